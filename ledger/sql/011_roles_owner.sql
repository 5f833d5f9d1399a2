-- P2C2R ledger schema, version 11: the ledger's role may set an account's
-- owner (009 added the column after 008 made the roles and granted the
-- columns the ledger updates; `p2c2r-ctl account link` writes it).

DO $$
BEGIN
    EXECUTE format ('GRANT UPDATE (owner) ON accounts TO %I', current_database () || '_ledger');
END $$;
