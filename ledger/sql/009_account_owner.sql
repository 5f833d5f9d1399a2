-- P2C2R ledger schema, version 9: an account's owner (issue 14, no self-dealing).
--
-- One person may hold a gamer account and a peer account under different
-- names and keys; the scheduler must never let that person's peer run that
-- person's tasks (nor check them). The operator names the owner of both
-- (p2c2r-ctl account create ... --owner OWNER, or account link); the ledger
-- returns it in every AuthReply and the gateway carries it to the scheduler
-- with the peer's PeerUp and the gamer's TaskSubmit. NULL: no owner named,
-- the account is only its own owner. An owner is a label, not an account:
-- the same text on two accounts is the link.

ALTER TABLE accounts ADD COLUMN owner TEXT CHECK (length (owner) BETWEEN 1 AND 128);
CREATE INDEX accounts_owner ON accounts (owner) WHERE owner IS NOT NULL;
