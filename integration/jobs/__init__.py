"""Jobs: durable intake, the job bodies, retries, schedules and the RQ worker."""
