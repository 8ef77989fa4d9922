-- Usage reports read closed UTC days, and months, from a rollup of the
-- ledger and the jobs it names, and read the rest (the edges of a range,
-- and the last days, which may still be written) from the ledger itself
-- (store/rollup.go).
-- A day is rolled up once it ended a day ago; nothing writes a ledger
-- entry or ends a job with a time that far back, so a rollup never goes
-- stale. grain 'day' rows have period YYYY-MM-DD, 'month' rows YYYY-MM;
-- 'site-day' and 'site-month' rows sum those by GPU type alone (user and
-- project 0), for reports of the whole site.
CREATE TABLE usage_rollup (
    grain      TEXT    NOT NULL CHECK (grain IN ('day', 'month', 'site-day', 'site-month')),
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

-- The ledger has no index by time, which every charge would pay for
-- (BENCHMARKS.md): the parts of a range that are not rolled up are read
-- from it by id, between bounds this table gives. last_id is the largest
-- id of an entry of a job written before the day began. Ids grow in the
-- order entries are written, so every entry written after a day began
-- has a larger id than the last_id of the day before (a transaction
-- takes far less than a day between its time and its insert).
CREATE TABLE usage_ledger_days (
    day     TEXT    PRIMARY KEY,
    last_id BIGINT NOT NULL
);

--bun:split

-- Jobs that ended, by when: the days not rolled up are read from them.
CREATE INDEX jobs_ended_at ON jobs (updated_at) WHERE status IN ('COMPLETED', 'FAILED', 'REJECTED', 'CANCELLED');
