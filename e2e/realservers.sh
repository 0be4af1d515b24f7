#!/usr/bin/env bash
# End-to-end on real mail servers: installs Dovecot (IMAP + LMTP) and Postfix
# from Debian's packages when missing, runs private instances on loopback
# ports with their own configuration and state in a temporary directory
# (Postfix: plus-addressing with recipient_delimiter = +, delivering into
# Dovecot over LMTP), runs the Go tests TestRealServers and
# TestRealServersCheck against them, and stops them. Besides the plain
# loopback ports the first test uses, Dovecot listens with implicit TLS
# (as on 993) and offers STARTTLS, and Postfix has a submission port (as
# 587) that requires STARTTLS and AUTH against Dovecot's passdb, all with a
# certificate from a CA made here for the run. Needs root (to install and to run Postfix's master).
#
#   bash e2e/realservers.sh            # from the repository root
#   bash e2e/realservers.sh bench [REPLIES [RUNS [FLAGS…]]]   # only `bench replies` on them (medians; FLAGS such as --answers)
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  echo "e2e/realservers.sh: needs root to install and run Postfix and Dovecot" >&2
  exit 1
fi
if ! command -v dovecot >/dev/null || ! command -v postfix >/dev/null || [ ! -x /usr/lib/dovecot/lmtp ]; then
  echo "== installing dovecot-imapd dovecot-lmtpd postfix"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends dovecot-imapd dovecot-lmtpd postfix >/dev/null
fi
id vmail >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin vmail

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
IMAP_PORT=$(free_port)
SMTP_PORT=$(free_port)
IMAPS_PORT=$(free_port)
SUBMIT_PORT=$(free_port)
LMTP_PORT=$(free_port) # ballotd's own LMTP door, for the lmtp.example.org run
E2E=$(mktemp -d /tmp/ballotd-e2e.XXXXXX)
chmod 755 "$E2E"
VMAIL_UID=$(id -u vmail)
VMAIL_GID=$(id -g vmail)
mkdir -p "$E2E/mail" "$E2E/dovecot-run" "$E2E/dovecot-state" "$E2E/postfix" "$E2E/postfix-queue" "$E2E/postfix-data"
chown vmail:vmail "$E2E/mail"
chown postfix:postfix "$E2E/postfix-data"

# A CA for this run and a server certificate for 127.0.0.1 signed by it.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=ballotd e2e CA" \
  -keyout "$E2E/ca.key" -out "$E2E/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
  -keyout "$E2E/server.key" -out "$E2E/server.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' > "$E2E/server.ext"
openssl x509 -req -in "$E2E/server.csr" -CA "$E2E/ca.pem" -CAkey "$E2E/ca.key" -CAcreateserial -days 2 \
  -extfile "$E2E/server.ext" -out "$E2E/server.pem" 2>/dev/null
chmod 644 "$E2E/server.key" "$E2E/ca.pem" "$E2E/server.pem"

cat > "$E2E/dovecot.conf" <<CONF
base_dir = $E2E/dovecot-run
state_dir = $E2E/dovecot-state
log_path = $E2E/dovecot.log
protocols = imap lmtp
listen = 127.0.0.1
ssl = yes
ssl_cert = <$E2E/server.pem
ssl_key = <$E2E/server.key
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = $VMAIL_UID
mail_location = maildir:$E2E/mail/%d/%n
recipient_delimiter = +
lmtp_save_to_detail_mailbox = no
passdb {
  driver = static
  args = password=secret
}
userdb {
  driver = static
  args = uid=$VMAIL_UID gid=$VMAIL_GID home=$E2E/mail/%d/%n
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $IMAP_PORT
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = $IMAPS_PORT
    ssl = yes
  }
}
service auth {
  unix_listener auth-postfix {
    mode = 0666
  }
}
service lmtp {
  unix_listener lmtp {
    mode = 0666
  }
}
CONF

cat > "$E2E/postfix/main.cf" <<CONF
compatibility_level = 3.6
queue_directory = $E2E/postfix-queue
data_directory = $E2E/postfix-data
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = mail.example.org
mydomain = example.org
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
virtual_mailbox_domains = example.org example.net example.com lmtp.example.org bench.example
virtual_transport = lmtp:unix:$E2E/dovecot-run/lmtp
transport_maps = inline:{ lmtp.example.org=lmtp:inet:127.0.0.1:$LMTP_PORT }
recipient_delimiter = +
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtputf8_enable = no
maillog_file_prefixes = $E2E
maillog_file = $E2E/postfix.log
smtpd_tls_cert_file = $E2E/server.pem
smtpd_tls_key_file = $E2E/server.key
smtpd_tls_loglevel = 1
smtpd_sasl_type = dovecot
smtpd_sasl_path = $E2E/dovecot-run/auth-postfix
CONF
cat > "$E2E/postfix/master.cf" <<CONF
127.0.0.1:$SMTP_PORT inet n - n - - smtpd
127.0.0.1:$SUBMIT_PORT inet n - n - - smtpd
  -o smtpd_tls_security_level=encrypt
  -o smtpd_tls_auth_only=yes
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_client_restrictions=permit_sasl_authenticated,reject
  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject
pickup     unix  n - n 60   1 pickup
cleanup    unix  n - n -    0 cleanup
qmgr       unix  n - n 300  1 qmgr
rewrite    unix  - - n -    - trivial-rewrite
bounce     unix  - - n -    0 bounce
defer      unix  - - n -    0 bounce
trace      unix  - - n -    0 bounce
verify     unix  - - n -    1 verify
flush      unix  n - n 1000? 0 flush
proxymap   unix  - - n -    - proxymap
proxywrite unix  - - n -    1 proxymap
smtp       unix  - - n -    - smtp
relay      unix  - - n -    - smtp
showq      unix  n - n -    - showq
error      unix  - - n -    - error
retry      unix  - - n -    - error
discard    unix  - - n -    - discard
lmtp       unix  - - n -    - lmtp
anvil      unix  - - n -    1 anvil
scache     unix  - - n -    1 scache
postlog    unix-dgram n - n - 1 postlogd
tlsmgr     unix  - - n 1000? 1 tlsmgr
CONF

stop() {
  postfix -c "$E2E/postfix" stop >/dev/null 2>&1 || true
  if [ -f "$E2E/dovecot-run/master.pid" ]; then kill "$(cat "$E2E/dovecot-run/master.pid")" 2>/dev/null || true; fi
  sleep 0.5
  rm -rf "$E2E"
}
trap stop EXIT

echo "== starting dovecot (IMAP 127.0.0.1:$IMAP_PORT, IMAPS :$IMAPS_PORT) and postfix (SMTP 127.0.0.1:$SMTP_PORT, submission :$SUBMIT_PORT) in $E2E"
dovecot -c "$E2E/dovecot.conf"
postfix -c "$E2E/postfix" start >"$E2E/postfix-start.log" 2>&1 || { cat "$E2E/postfix-start.log"; echo "postfix failed to start:"; cat "$E2E/postfix.log" 2>/dev/null; exit 1; }
for _ in $(seq 50); do
  (echo > /dev/tcp/127.0.0.1/$SMTP_PORT) 2>/dev/null && (echo > /dev/tcp/127.0.0.1/$IMAP_PORT) 2>/dev/null &&
    (echo > /dev/tcp/127.0.0.1/$SUBMIT_PORT) 2>/dev/null && (echo > /dev/tcp/127.0.0.1/$IMAPS_PORT) 2>/dev/null && break
  sleep 0.1
done

export BALLOTD_E2E_IMAP=127.0.0.1:$IMAP_PORT BALLOTD_E2E_SMTP=127.0.0.1:$SMTP_PORT BALLOTD_E2E_PASSWORD=secret \
  BALLOTD_E2E_IMAPS=127.0.0.1:$IMAPS_PORT BALLOTD_E2E_SUBMIT=127.0.0.1:$SUBMIT_PORT BALLOTD_E2E_CA=$E2E/ca.pem \
  BALLOTD_E2E_LMTP=127.0.0.1:$LMTP_PORT
status=0
if [ "${1:-}" = bench ]; then
  # bash e2e/realservers.sh bench [REPLIES [RUNS [FLAGS…]]]: only the ingest benchmark, on quiet servers.
  BALLOTD_IMAP_PASSWORD=secret go run ./cmd/ballotd bench replies --replies "${2:-3000}" --runs "${3:-3}" \
    --imap "127.0.0.1:$IMAP_PORT" --smtp "127.0.0.1:$SMTP_PORT" "${@:4}"
  exit
fi
go test -count=1 -run '^TestRealServers(Check)?$' -v ./cmd/ballotd/ 2>&1 | grep -v '^=== RUN' || status=$?
if [ "$status" = 0 ]; then
  # The ingest benchmark on the real servers: replies sent through Postfix
  # into Dovecot, read by ballotd's reader against a raw durable reader of
  # the same mailbox; it checks its own tally, so a wrong count fails here.
  echo "== bench replies on Postfix and Dovecot"
  BALLOTD_IMAP_PASSWORD=secret go run ./cmd/ballotd bench replies --replies 1000 \
    --imap "127.0.0.1:$IMAP_PORT" --smtp "127.0.0.1:$SMTP_PORT" || status=$?
fi
if [ "$status" != 0 ]; then
  echo "--- postfix log"; tail -30 "$E2E/postfix.log" 2>/dev/null || true
  echo "--- dovecot log"; tail -30 "$E2E/dovecot.log" 2>/dev/null || true
fi
exit $status
