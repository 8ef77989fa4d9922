-- Runs: an executor's hold on a job (a lease, renewed by heartbeats) and
-- what it reported of the job. One row a job, from its first claim on;
-- each claim raises generation, so a report on an older lease matches
-- nothing. A lease that has ended (the job was finished, or went back to
-- the queue) has no expires_at.
CREATE TABLE job_runs (
    job_id           BIGINT PRIMARY KEY REFERENCES jobs (id),
    executor         TEXT    NOT NULL,
    generation       BIGINT  NOT NULL CHECK (generation >= 1),
    expires_at       TIMESTAMPTZ,
    external_id      TEXT,
    heartbeat_at     TIMESTAMPTZ,
    started_at       TIMESTAMPTZ,
    ended_at         TIMESTAMPTZ,
    exit_code        INTEGER,
    reason           TEXT,
    cancel_requested BOOLEAN NOT NULL DEFAULT false
);

--bun:split

-- The leases to reap when they expire.
CREATE INDEX job_runs_expires_at ON job_runs (expires_at) WHERE expires_at IS NOT NULL;
