-- A schedule whose period cannot be given (its account is full, or would
-- hold more than the most an account may) is tried again from retry_at,
-- later after each failure in a row (failures): it neither fills the log
-- at every run of the worker nor, with others like it, takes the places
-- of the schedules that can be given in a run.
ALTER TABLE schedules ADD COLUMN retry_at TIMESTAMPTZ;

--bun:split

ALTER TABLE schedules ADD COLUMN failures INTEGER NOT NULL DEFAULT 0 CHECK (failures >= 0);
