-- SQLite drops ledger_job_id in this migration; PostgreSQL keeps it. Its
-- planner, on tables whose statistics lag behind a burst of inserts,
-- joins jobs to their ledger entries by nested loop, and gaasd check then
-- takes minutes without the index. The number is kept so that both
-- dialects count their migrations alike.
SELECT 1;
