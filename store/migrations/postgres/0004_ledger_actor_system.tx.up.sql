-- Work that no user asked for (an import, the default quota of a new
-- account, later executors) is recorded as done by the system, under a
-- name, rather than by a user who did not do it: an entry names exactly one
-- of actor_id and actor_system.
ALTER TABLE ledger ALTER COLUMN actor_id DROP NOT NULL;

--bun:split

ALTER TABLE ledger ADD COLUMN actor_system TEXT CHECK (actor_system <> '');

--bun:split

ALTER TABLE ledger ADD CONSTRAINT ledger_one_actor CHECK ((actor_id IS NULL) <> (actor_system IS NULL));
