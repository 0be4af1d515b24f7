#!/usr/bin/env bash
# End-to-end on real mail servers: installs Dovecot (IMAP + LMTP) and Postfix
# from Debian's packages when missing, runs private instances on loopback
# ports with their own configuration and state in a temporary directory
# (Postfix: plus-addressing with recipient_delimiter = +, delivering into
# Dovecot over LMTP), runs the Go test TestRealServers against them, and
# stops them. Needs root (to install and to run Postfix's master).
#
#   bash e2e/realservers.sh            # from the repository root
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
E2E=$(mktemp -d /tmp/ballotd-e2e.XXXXXX)
chmod 755 "$E2E"
VMAIL_UID=$(id -u vmail)
VMAIL_GID=$(id -g vmail)
mkdir -p "$E2E/mail" "$E2E/dovecot-run" "$E2E/dovecot-state" "$E2E/postfix" "$E2E/postfix-queue" "$E2E/postfix-data"
chown vmail:vmail "$E2E/mail"
chown postfix:postfix "$E2E/postfix-data"

cat > "$E2E/dovecot.conf" <<CONF
base_dir = $E2E/dovecot-run
state_dir = $E2E/dovecot-state
log_path = $E2E/dovecot.log
protocols = imap lmtp
listen = 127.0.0.1
ssl = no
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
virtual_mailbox_domains = example.org example.net example.com
virtual_transport = lmtp:unix:$E2E/dovecot-run/lmtp
recipient_delimiter = +
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtputf8_enable = no
maillog_file_prefixes = $E2E
maillog_file = $E2E/postfix.log
CONF
cat > "$E2E/postfix/master.cf" <<CONF
127.0.0.1:$SMTP_PORT inet n - n - - smtpd
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
CONF

stop() {
  postfix -c "$E2E/postfix" stop >/dev/null 2>&1 || true
  if [ -f "$E2E/dovecot-run/master.pid" ]; then kill "$(cat "$E2E/dovecot-run/master.pid")" 2>/dev/null || true; fi
  sleep 0.5
  rm -rf "$E2E"
}
trap stop EXIT

echo "== starting dovecot (IMAP 127.0.0.1:$IMAP_PORT) and postfix (SMTP 127.0.0.1:$SMTP_PORT) in $E2E"
dovecot -c "$E2E/dovecot.conf"
postfix -c "$E2E/postfix" start >"$E2E/postfix-start.log" 2>&1 || { cat "$E2E/postfix-start.log"; echo "postfix failed to start:"; cat "$E2E/postfix.log" 2>/dev/null; exit 1; }
for _ in $(seq 50); do
  (echo > /dev/tcp/127.0.0.1/$SMTP_PORT) 2>/dev/null && (echo > /dev/tcp/127.0.0.1/$IMAP_PORT) 2>/dev/null && break
  sleep 0.1
done

export BALLOTD_E2E_IMAP=127.0.0.1:$IMAP_PORT BALLOTD_E2E_SMTP=127.0.0.1:$SMTP_PORT BALLOTD_E2E_PASSWORD=secret
status=0
go test -count=1 -run '^TestRealServers$' -v ./cmd/ballotd/ 2>&1 | grep -v '^=== RUN' || status=$?
if [ "$status" != 0 ]; then
  echo "--- postfix log"; tail -30 "$E2E/postfix.log" 2>/dev/null || true
  echo "--- dovecot log"; tail -30 "$E2E/dovecot.log" 2>/dev/null || true
fi
exit $status
