"""How builds are scheduled: the definitions, jobs, sensors, schedules, owed builds, pools and the
external source assets. May import: every stage below it (not demo/ or cli/)."""
