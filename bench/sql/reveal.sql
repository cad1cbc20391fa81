-- pgbench (-M prepared, -D n=0): the statements one reveal issues, in order and in the
-- same transactions: the rate-limit upsert and the peek (each autocommitted), then the
-- consuming transaction: CONSUME (app/store/secrets.py: lock the row, delete it, close
-- the receipt, in one statement) and the audit append (app/store/audit.py).
-- Each client consumes its own pre-made secrets (bench/pgbench.py makes them), once each.
\set n :n + 1
\set k :base + :client_id * 10000000 + :n
\set part random(0, 15)
WITH w AS (
    SELECT to_timestamp(floor(extract(epoch FROM now()) / :window::int) * :window::int) AS start
)
INSERT INTO rate_counters (client_ref, event, window_start, hits)
SELECT :client_ref::bytea, 'show_secret', w.start, 1 FROM w
ON CONFLICT (client_ref, event, window_start) DO UPDATE SET hits = rate_counters.hits + 1
RETURNING hits,
          ceil(extract(epoch FROM window_start + make_interval(secs => :window::int) - now()))::int
              AS retry_after;
SELECT s.id, s.receipt_id, s.key_id, s.ciphertext, s.passphrase_salt, s.value_bytes,
       r.secret_ttl AS ttl, s.created_at AS created, s.expires_at, r.custid
  FROM secrets s JOIN receipts r ON r.id = s.receipt_id
 WHERE s.expires_at > now() AND s.id = sha256(int8send(:k::bigint));
BEGIN;
WITH locked AS (
    SELECT id FROM secrets WHERE id = sha256(int8send(:k::bigint)) AND expires_at > now()
       FOR UPDATE
), gone AS (
    DELETE FROM secrets s USING locked WHERE s.id = locked.id RETURNING s.receipt_id
)
UPDATE receipts r
   SET state = :state, share_key_sealed = NULL, updated_at = now(),
       received_at = CASE WHEN :state::text = 'received' THEN now() END,
       burned_at = CASE WHEN :state::text = 'burned' THEN now() END
  FROM gone
 WHERE r.id = gone.receipt_id
RETURNING r.id;
SELECT seq, chain_hash, now() AS at FROM audit_heads WHERE part = :part::smallint FOR UPDATE \gset
\set next :seq + 1
WITH appended AS (
    INSERT INTO audit_events (part, seq, at, event, outcome, actor, client_ip, user_agent,
                              request_id, receipt_ref, detail, chain_hash)
    SELECT :part::smallint, seq, :at::timestamptz, event, outcome, actor, client_ip, user_agent,
           request_id, receipt_ref, detail, chain_hash
      FROM unnest(ARRAY[:next::bigint], ARRAY['secret.revealed'], ARRAY['success'],
                  ARRAY['anonymous'], ARRAY['127.0.0.1'], ARRAY['wrk'], ARRAY[md5(:k::bigint::text)],
                  ARRAY[sha256(int8send(-:k::bigint))], ARRAY[NULL::text],
                  ARRAY[sha256(int8send(:k::bigint + :next::bigint))])
           AS e(seq, event, outcome, actor, client_ip, user_agent, request_id, receipt_ref,
                detail, chain_hash)
)
UPDATE audit_heads SET seq = :next::bigint, chain_hash = sha256(int8send(:k::bigint + :next::bigint))
 WHERE part = :part::smallint;
COMMIT;
