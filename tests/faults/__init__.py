"""The fault drill: real gateway processes killed, starved of disk, locked out of their database and
shifted in time, and what must hold afterwards (see docs/load-and-faults.md, "Fault drill")."""
