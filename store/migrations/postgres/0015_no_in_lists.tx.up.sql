-- SQLite's migration 0015 writes conditions that it evaluated by building
-- a temporary table each time (IN lists of three or more constants) as ORs
-- of equalities. PostgreSQL compares IN lists in place, and its CHECKs stay
-- as they are; the index of ended jobs is made with the condition as the
-- queries that use it now state it, the same on either database.

DROP INDEX jobs_ended_at;

--bun:split

CREATE INDEX jobs_ended_at ON jobs (updated_at)
    WHERE status = 'COMPLETED' OR status = 'FAILED' OR status = 'REJECTED' OR status = 'CANCELLED';
