-- Usage reports read closed UTC days, and months, from a rollup of the
-- ledger and the jobs it names, and read the rest (the edges of a range,
-- and the last days, which may still be written) from the ledger itself.
-- A day is rolled up once it ended a day ago; nothing writes a ledger
-- entry or ends a job with a time that far back, so a rollup never goes
-- stale. grain 'day' rows have period YYYY-MM-DD, 'month' rows YYYY-MM.
CREATE TABLE usage_rollup (
    grain      TEXT    NOT NULL CHECK (grain IN ('day', 'month')),
    period     TEXT    NOT NULL,
    user_id    BIGINT  NOT NULL,
    project_id BIGINT  NOT NULL,            -- 0: the user's own account
    gpu_type   TEXT    NOT NULL,
    charged    BIGINT  NOT NULL,            -- milli-credits of charge entries
    returned   BIGINT  NOT NULL,            -- milli-credits of refund entries
    gpu_hours  BIGINT  NOT NULL,            -- milli-hours times GPUs of jobs ended
    completed  BIGINT  NOT NULL,
    failed     BIGINT  NOT NULL,
    rejected   BIGINT  NOT NULL,
    cancelled  BIGINT  NOT NULL,
    PRIMARY KEY (grain, period, user_id, project_id, gpu_type)
);

--bun:split

-- Every day before days, and every month before months, is rolled up
-- ('': nothing yet).
CREATE TABLE usage_rollup_state (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    days   TEXT NOT NULL,
    months TEXT NOT NULL
);

--bun:split

INSERT INTO usage_rollup_state (id, days, months) VALUES (1, '', '');

--bun:split

-- The days not rolled up are read from the ledger and the jobs by time.
CREATE INDEX ledger_job_created_at ON ledger (created_at) WHERE job_id IS NOT NULL;

--bun:split

CREATE INDEX jobs_ended_at ON jobs (updated_at) WHERE status IN ('COMPLETED', 'FAILED', 'REJECTED', 'CANCELLED');
