"""``appliance demo``: the whole story on one machine, the real agent, health, page and lights.
``source`` is the embedded sales platform, ``story`` the timeline; it never simulates our own code.
"""
