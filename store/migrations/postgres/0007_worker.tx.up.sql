-- The background worker: a lease for each piece of periodic work, so that
-- of several processes on one database one does it at a time; and the
-- reason a job ended when the system ended it.

-- A lease is held by holder until expires_at (the store's clock). One
-- conditional statement takes it (store/leases.go): a holder renews its
-- own, anyone may take one whose time has run out.
CREATE TABLE leases (
    name       TEXT      PRIMARY KEY,
    holder     TEXT      NOT NULL CHECK (holder <> ''),
    expires_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

--bun:split

-- The allocations that have an end and still hold credits, which the
-- worker finds ended and lets expire.
CREATE INDEX allocations_ending ON allocations (expires_at, id) WHERE expires_at IS NOT NULL AND remaining > 0;

--bun:split

-- Why the system ended a job, such as a stale reservation cancelled; NULL
-- when a person moved it.
ALTER TABLE jobs ADD COLUMN end_reason TEXT;
