-- SQLite evaluates "x IN (a, b, c, ...)" of three or more constants by
-- building a temporary table of the constants, each time the expression
-- is evaluated: a CHECK on every insert and update of its table, a partial
-- index's WHERE on every insert and update of its table. Every submission
-- paid for three (the jobs' status CHECK, the jobs_ended_at index, the
-- ledger's kind CHECK) and every change of a job's status for two. The
-- same conditions written as ORs of equalities are compared in place.
--
-- A CHECK cannot be altered, and rebuilding jobs would break the
-- references to it, so the two CHECKs are rewritten in the schema as
-- SQLite documents for changes that leave what is stored unchanged
-- (https://sqlite.org/lang_altertable.html#otheralter): every row that
-- satisfies the old CHECK satisfies the new one, and no other. The index
-- is dropped and made again; that also tells every connection that the
-- schema changed.

PRAGMA writable_schema = ON;

--bun:split

UPDATE sqlite_schema SET sql = replace(sql,
    'CHECK (status IN
                        (''PENDING'', ''APPROVED'', ''RUNNING'', ''COMPLETED'', ''FAILED'', ''REJECTED'', ''CANCELLED''))',
    'CHECK (status = ''PENDING'' OR status = ''APPROVED'' OR status = ''RUNNING'' OR status = ''COMPLETED''
                        OR status = ''FAILED'' OR status = ''REJECTED'' OR status = ''CANCELLED'')')
WHERE type = 'table' AND name = 'jobs';

--bun:split

UPDATE sqlite_schema SET sql = replace(sql,
    'CHECK (kind IN (''grant'', ''set'', ''charge'', ''refund'', ''expire'', ''revoke'', ''transfer''))',
    'CHECK (kind = ''grant'' OR kind = ''set'' OR kind = ''charge'' OR kind = ''refund''
                         OR kind = ''expire'' OR kind = ''revoke'' OR kind = ''transfer'')')
WHERE type = 'table' AND name = 'ledger';

--bun:split

PRAGMA writable_schema = RESET;

--bun:split

DROP INDEX jobs_ended_at;

--bun:split

-- Queries that use it must say its condition as it is written here.
CREATE INDEX jobs_ended_at ON jobs (updated_at)
    WHERE status = 'COMPLETED' OR status = 'FAILED' OR status = 'REJECTED' OR status = 'CANCELLED';
