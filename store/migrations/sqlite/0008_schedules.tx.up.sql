-- Schedules of recurring allocations: every period, from starts_at in
-- time_zone, an account is given amount credits for the scope gpu_types,
-- in an allocation that starts when the period begins and expires when it
-- ends. next_period is the first period not yet given, and next_start when
-- it begins. What a period's allocation holds at its end expires, or with
-- leftover 'rollover' moves into the next one up to rollover_cap.
CREATE TABLE schedules (
    id           INTEGER PRIMARY KEY,
    account_id   INTEGER NOT NULL REFERENCES accounts (id),
    amount       INTEGER NOT NULL CHECK (amount > 0),            -- milli-credits each period
    gpu_types    TEXT,                                           -- one name a line; NULL: every type
    period       TEXT    NOT NULL CHECK (period IN ('daily', 'weekly', 'monthly', 'quarterly', 'yearly')),
    starts_at    TIMESTAMP NOT NULL,
    time_zone    TEXT    NOT NULL,
    leftover     TEXT    NOT NULL CHECK (leftover IN ('expire', 'rollover')),
    rollover_cap INTEGER NOT NULL CHECK (rollover_cap >= 0),     -- milli-credits
    paused       INTEGER NOT NULL CHECK (paused IN (0, 1)),
    ended_at     TIMESTAMP,
    next_period  INTEGER NOT NULL CHECK (next_period >= 0),
    next_start   TIMESTAMP NOT NULL,
    reason       TEXT    NOT NULL,
    actor_id     INTEGER REFERENCES users (id),
    actor_system TEXT CHECK (actor_system <> ''),
    created_at   TIMESTAMP NOT NULL,
    updated_at   TIMESTAMP NOT NULL,
    CONSTRAINT schedules_one_actor CHECK ((actor_id IS NULL) <> (actor_system IS NULL)),
    CONSTRAINT schedules_rollover_cap CHECK ((leftover = 'rollover') = (rollover_cap > 0))
);

--bun:split

CREATE INDEX schedules_account_id ON schedules (account_id, id);

--bun:split

-- The schedules whose next period GrantDue looks for.
CREATE INDEX schedules_due ON schedules (next_start) WHERE paused = FALSE AND ended_at IS NULL;

--bun:split

-- The schedule that made an allocation, and the period it is for: each
-- (schedule, period) has one allocation at most.
ALTER TABLE allocations ADD COLUMN schedule_id INTEGER REFERENCES schedules (id);

--bun:split

ALTER TABLE allocations ADD COLUMN period_start TIMESTAMP;

--bun:split

CREATE UNIQUE INDEX allocations_schedule_period ON allocations (schedule_id, period_start);
