-- P2C2R ledger schema, version 8: database roles with least privilege
-- (issue 13, part 5; docs/trust.md).
--
--   the owner     whoever runs the migrations (p2c2r-ledger --owner-db, or
--                 --db when one user does everything): owns every table
--   DB_ledger     the ledger at run time: reads everything, inserts what
--                 settlement and the operators' commands write, updates
--                 only the columns they change; no DELETE, no TRUNCATE, no
--                 DDL; the admin log and the journal only grow
--   DB_reader     p2c2r-ctl's reads and `p2c2r-ctl psql`: SELECT only
--
-- Roles are cluster-wide and tests make many databases in one cluster, so
-- they are named after the database (current_database () || '_ledger').
-- Made here when missing, able to log in but without a password: a cluster
-- that trusts local connections (make run, the tests) lets them in as they
-- are; one that asks for passwords (compose) makes them first, with their
-- passwords (deploy/docker/pg-entrypoint.sh), and this only grants.
--
-- ledger_settle skips the journal's row checks under the setting
-- p2c2r.settle_checked (004), and any session may set a placeholder
-- setting: the skip is now the owner's alone (the function runs as its
-- owner, SECURITY DEFINER), so the ledger's role, which may insert into
-- the journal, always goes through the checks. A later migration that adds
-- a table grants what the ledger writes in it (SELECT comes by default
-- privileges below); one that replaces ledger_settle keeps SECURITY
-- DEFINER and the REVOKE.

DO $$
DECLARE
    owner_name TEXT := current_user;
    ledger_role TEXT := current_database () || '_ledger';
    reader_role TEXT := current_database () || '_reader';
    s TEXT := current_schema ();
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = ledger_role) THEN
        EXECUTE format ('CREATE ROLE %I LOGIN', ledger_role);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = reader_role) THEN
        EXECUTE format ('CREATE ROLE %I LOGIN', reader_role);
    END IF;
    EXECUTE format ('GRANT USAGE ON SCHEMA %I TO %I, %I', s, ledger_role, reader_role);
    EXECUTE format ('GRANT SELECT ON ALL TABLES IN SCHEMA %I TO %I, %I', s, ledger_role,
                    reader_role);
    EXECUTE format ('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT ON TABLES TO %I, %I',
                    s, ledger_role, reader_role);
    EXECUTE format ('GRANT USAGE ON ALL SEQUENCES IN SCHEMA %I TO %I', s, ledger_role);
    EXECUTE format ('GRANT INSERT ON journal_tx, journal_entries, tasks, accounts, rates,'
                    ' payouts, reversals, failed_tasks, refunds, subsidy_days, admin_log TO %I',
                    ledger_role);
    EXECUTE format ('GRANT UPDATE (disabled, key_hash, key_created_at, balance_pico)'
                    ' ON accounts TO %I', ledger_role);
    EXECUTE format ('GRANT UPDATE (paid_tx, paid_at, reference) ON payouts TO %I',
                    ledger_role);
    EXECUTE format ('GRANT UPDATE (used_pico) ON subsidy_days TO %I', ledger_role);
    -- LOCK TABLE in SHARE (ROW EXCLUSIVE) mode, which the ledger takes on
    -- these two, asks for UPDATE on the table; their append-only triggers
    -- refuse every UPDATE, and only the owner can switch those off
    EXECUTE format ('GRANT UPDATE ON rates, tasks TO %I', ledger_role);

    -- The journal checks are skipped only inside ledger_settle, as its owner
    EXECUTE 'DROP TRIGGER journal_entries_check ON journal_entries';
    EXECUTE format ('CREATE TRIGGER journal_entries_check AFTER INSERT ON journal_entries'
                    ' REFERENCING NEW TABLE AS new_entries FOR EACH STATEMENT'
                    ' WHEN (current_setting (''p2c2r.settle_checked'', true) IS DISTINCT FROM'
                    ' ''on'' OR current_user <> %L) EXECUTE FUNCTION journal_entries_check ()',
                    owner_name);
    EXECUTE 'DROP TRIGGER tasks_check ON tasks';
    EXECUTE format ('CREATE TRIGGER tasks_check AFTER INSERT ON tasks'
                    ' REFERENCING NEW TABLE AS new_tasks FOR EACH STATEMENT'
                    ' WHEN (current_setting (''p2c2r.settle_checked'', true) IS DISTINCT FROM'
                    ' ''on'' OR current_user <> %L) EXECUTE FUNCTION tasks_check ()',
                    owner_name);
    EXECUTE 'ALTER FUNCTION ledger_settle SECURITY DEFINER';
    EXECUTE 'REVOKE EXECUTE ON FUNCTION ledger_settle FROM PUBLIC';
    EXECUTE format ('GRANT EXECUTE ON FUNCTION ledger_settle TO %I', ledger_role);
END $$;
