"""The indicator: traffic light, button and OLED that show the health state on the Pi.

A reader of the status document (BRIEF section 3); it never imports the sync code.
``frame.render_frame`` is the one drawing function, shared with the status page.
"""
