-- pgbench (-M prepared): the statements one conceal issues, in order and in the same
-- transactions: the rate-limit upsert (app/store/ratelimits.py, autocommitted), then
-- INSERT_PAIR (app/store/secrets.py) and the audit append (app/store/audit.py) in one
-- transaction. Ids are random 32-byte hashes; the sealed values have the lengths the
-- service writes for the benchmark's 64-byte value. The HMAC of the chain is computed
-- by the service in Python; here a hash stands in for it.
\set r random(1, 9000000000000000000)
\set part random(0, 15)
WITH w AS (
    SELECT to_timestamp(floor(extract(epoch FROM now()) / :window::int) * :window::int) AS start
)
INSERT INTO rate_counters (client_ref, event, window_start, hits)
SELECT :client_ref::bytea, 'create_secret', w.start, 1 FROM w
ON CONFLICT (client_ref, event, window_start) DO UPDATE SET hits = rate_counters.hits + 1
RETURNING hits,
          ceil(extract(epoch FROM window_start + make_interval(secs => :window::int) - now()))::int
              AS retry_after;
BEGIN;
WITH receipt AS (
    INSERT INTO receipts (id, key_id, share_key_sealed, secret_shortkey, custid, kind, state,
                          secret_ttl, receipt_ttl, has_passphrase, value_claimable,
                          share_domain, recipients, receipt_key_sealed, expires_at)
    VALUES (sha256(int8send(-:r::bigint)), 1, :share_sealed::bytea, 'abcdef', 'anon', 'conceal', 'new',
            :ttl::int, 2 * :ttl::int, NULL::bytea IS NOT NULL, false, NULL, NULL, NULL,
            now() + make_interval(secs => 2 * :ttl::int))
    RETURNING id
)
INSERT INTO secrets (id, receipt_id, key_id, ciphertext, passphrase_salt, value_bytes, expires_at)
SELECT sha256(int8send(:r::bigint)), receipt.id, 1, :ciphertext::bytea, NULL, 64,
       now() + make_interval(secs => :ttl::int) FROM receipt
RETURNING created_at;
SELECT seq, chain_hash, now() AS at FROM audit_heads WHERE part = :part::smallint FOR UPDATE \gset
\set next :seq + 1
WITH appended AS (
    INSERT INTO audit_events (part, seq, at, event, outcome, actor, client_ip, user_agent,
                              request_id, receipt_ref, detail, chain_hash)
    SELECT :part::smallint, seq, :at::timestamptz, event, outcome, actor, client_ip, user_agent,
           request_id, receipt_ref, detail, chain_hash
      FROM unnest(ARRAY[:next::bigint], ARRAY['secret.created'], ARRAY['success'],
                  ARRAY['anonymous'], ARRAY['127.0.0.1'], ARRAY['wrk'], ARRAY[md5(:r::bigint::text)],
                  ARRAY[sha256(int8send(-:r::bigint))], ARRAY['conceal'],
                  ARRAY[sha256(int8send(:r::bigint + :next::bigint))])
           AS e(seq, event, outcome, actor, client_ip, user_agent, request_id, receipt_ref,
                detail, chain_hash)
)
UPDATE audit_heads SET seq = :next::bigint, chain_hash = sha256(int8send(:r::bigint + :next::bigint))
 WHERE part = :part::smallint;
COMMIT;
