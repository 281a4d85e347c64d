"""What to do next: one plain sentence for the banner, from the state and its cause."""

from __future__ import annotations

from typing import Any

AGENT_LOG = "journalctl -u appliance-sync -n 50"

# By the kind of failure the agent recorded for the source (agent.failure_kind).
_SOURCE_DOWN = {
    "hostkey": "The bastion's host key is unknown or has changed. Confirm the new key with "
    "the bastion's owner, then pin it in the ssh.known_hosts file (see the README). "
    "Never accept it without checking.",
    "login": "The database refused the login. Check the password file of [source] and the "
    "role with the database's owners, then restart the agent: "
    "sudo systemctl restart appliance-sync.",
    "tunnel": "The SSH tunnel to the bastion is down. Check the site's network and that the "
    "bastion is up; run appliance doctor on the Pi for details.",
    "secret": "A secret file cannot be read. Run appliance config check on the Pi and fix what it reports.",
    "replica": "The local replica cannot be written (disk full or failing SD card?). Run "
    "appliance doctor on the Pi.",
}
_DATABASE_DOWN = (
    "The source database does not answer. If this is planned maintenance there "
    "is nothing to do; otherwise tell the source's owners."
)
_KEEPS = " The local copy keeps serving the last good data."


def next_step(status: dict[str, Any], source: dict[str, Any]) -> str:
    """Return what an engineer should do about ``status`` (``source``: the agent's record)."""
    state = status["state"]
    agent = status["agent"]
    if not agent["running"]:
        if not agent["last_heartbeat"]:
            return (
                "The sync agent has not run yet. On the Pi: sudo systemctl start "
                "appliance-sync, then watch its log: " + AGENT_LOG + "."
            )
        return (
            "The sync agent is not running, so nothing is synced. On the Pi: sudo "
            "systemctl restart appliance-sync; if it stops again, read its log: " + AGENT_LOG + "." + _KEEPS
        )
    if state == "outage":
        if source.get("down"):
            return _SOURCE_DOWN.get(source.get("kind", ""), _DATABASE_DOWN) + _KEEPS
        failed = [t["name"] for t in status["tables"] if t.get("error")]
        if failed:
            return (
                f"Syncing {failed[0]} fails. Open its page below for the error and fix "
                f"the cause (often a missing table or grant at the source)."
            )
        return (
            "No table has synced for longer than max_lag. Read the agent's log ("
            + AGENT_LOG
            + ") and run appliance doctor on the Pi."
            + _KEEPS
        )
    if state == "maintenance":
        return "Planned maintenance at the source: nothing to do, syncing resumes by itself." + _KEEPS
    if state == "drift":
        return (
            "The source's schema or data changed. Open the table's page to see the change, "
            "tell the people who use that table, then accept the change there (or run "
            "appliance schema accept TABLE)."
        )
    if state == "lagging":
        if any(t["last_sync"] is None for t in status["tables"]):
            return "The first sync is still running; wait for it to finish."
        return (
            "The local copy is behind. It usually catches up by itself; if the lag keeps "
            "growing, read the agent's log: " + AGENT_LOG + "."
        )
    return "Nothing to do: the local copy is fresh."
