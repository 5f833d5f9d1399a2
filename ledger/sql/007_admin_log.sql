-- P2C2R ledger schema, version 7: the operators' log (issue 13, part 4).
--
-- Every admin command the ledger applies (p2c2r-ctl's writes) leaves one
-- row, in the command's own transaction: who (the name of the operator key
-- the broker authenticated), the command, its arguments, the state of what
-- it changed before and after, its result (API keys taken out), and the
-- journal transactions it made. The table is append-only (a trigger refuses
-- UPDATE, DELETE and TRUNCATE; 008_roles.sql gives the ledger's role no
-- such right), and its rows are chained: each row's hash covers the row and
-- the hash of the one before, so an edit or a deletion by someone who can
-- bypass the trigger (the owner) breaks the chain, which `p2c2r-ctl audit`
-- recomputes with its own query. Only a rewrite of the whole chain from the
-- edited row on escapes it; `p2c2r-ctl log` prints the head (seq, hash) to
-- note elsewhere.

CREATE TABLE admin_log (
    seq        BIGINT PRIMARY KEY CHECK (seq >= 1),   -- 1, 2, 3... in commit order
    at         TIMESTAMPTZ NOT NULL DEFAULT now (),
    who        TEXT NOT NULL CHECK (length (who) BETWEEN 1 AND 200),
    command    TEXT NOT NULL CHECK (length (command) BETWEEN 1 AND 64),
    args       JSONB NOT NULL,
    before     JSONB,
    after      JSONB,
    result     JSONB,
    tx_ids     BIGINT[] NOT NULL DEFAULT '{}',
    prev_hash  TEXT NOT NULL CHECK (prev_hash ~ '^[0-9a-f]{64}$'),
    hash       TEXT NOT NULL UNIQUE CHECK (hash ~ '^[0-9a-f]{64}$')
);
CREATE INDEX admin_log_tx_ids ON admin_log USING gin (tx_ids);

-- The text a row's hash covers: every column but the hash, in a fixed form
-- (jsonb's text is canonical; the time in UTC to the microsecond). The
-- audit writes the same expression itself rather than trusting this one.
CREATE FUNCTION admin_log_digest (r admin_log) RETURNS TEXT
LANGUAGE sql IMMUTABLE AS $$
    SELECT encode (sha256 (convert_to (r.prev_hash || jsonb_build_array (r.seq,
        to_char (r.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), r.who, r.command,
        r.args, r.before, r.after, r.result, to_jsonb (r.tx_ids))::TEXT, 'UTF8')), 'hex')
$$;

-- Numbers the new row after the last one and seals it. The lock (held to
-- commit) orders writers, so seq is the commit order and no two rows
-- follow the same one.
CREATE FUNCTION admin_log_seal () RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    last admin_log;
BEGIN
    PERFORM pg_advisory_xact_lock (7231964007);
    SELECT * INTO last FROM admin_log ORDER BY seq DESC LIMIT 1;
    NEW.seq := COALESCE (last.seq, 0) + 1;
    NEW.at := now ();
    NEW.prev_hash := COALESCE (last.hash, repeat ('0', 64));
    NEW.hash := admin_log_digest (NEW);
    RETURN NEW;
END $$;

CREATE TRIGGER admin_log_seal
    BEFORE INSERT ON admin_log
    FOR EACH ROW EXECUTE FUNCTION admin_log_seal ();
CREATE TRIGGER admin_log_append_only
    BEFORE UPDATE OR DELETE ON admin_log
    FOR EACH ROW EXECUTE FUNCTION journal_refuse_change ();
CREATE TRIGGER admin_log_no_truncate
    BEFORE TRUNCATE ON admin_log
    FOR EACH STATEMENT EXECUTE FUNCTION journal_refuse_change ();

-- The first row: the log starts here. Admin transactions of the journal
-- before it (up to journal_tx_before) were made without a log.
INSERT INTO admin_log (seq, who, command, args, prev_hash, hash)
SELECT 0 + 1, 'migration', 'admin-log-start',
       jsonb_build_object ('journal_tx_before', COALESCE (MAX (id), 0)),
       repeat ('0', 64), repeat ('0', 64)
  FROM journal_tx;
