-- Only gaasd check read ledger by job_id, and it joins whole tables, which
-- needs no index; every submission paid to maintain it (about a tenth of
-- the group commit's time on SQLite).
DROP INDEX IF EXISTS ledger_job_id;
