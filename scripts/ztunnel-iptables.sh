#!/bin/sh
# ztunnel-iptables.sh install|remove [options]
#
# The node's capture rules (the nat chains that send pod traffic through ztunnel) without Node: for node
# bootstrap and init containers. It installs exactly the chains and rules that `ztunnel iptables install`
# installs (packages/ztunnel/src/iptables-rules.ts), in the same order, from the same options; a test
# (packages/ztunnel/test/iptables-script.test.ts) compares `iptables -t nat -S` of the two. Change both together.
#
# Idempotent: install creates each chain or flushes it, hooks it (at the top of PREROUTING / OUTPUT, so that
# nat chains of kube-proxy or Docker cannot end nat processing first) only if it is not hooked yet, and refills
# it; remove unhooks, flushes and deletes the chains and succeeds when they, the binary or its nat table are
# gone, and fails on any other error (e.g. not root). Install on every ztunnel start; remove only to uninstall:
# the rules stay across a restart, so pod traffic fails closed while ztunnel is down. Every iptables call passes
# -w (wait for the xtables lock): a lock held by kube-proxy or Docker must not make a -C check look like a
# missing hook.
# Install does all of a family's part in one `<iptables>-restore --noflush` transaction (iptables-restore,
# ip6tables-restore, or the -restore of the binary named with --iptables / --ip6tables): flushing and
# appending rule by rule would leave the chains empty for a moment (pod traffic bypassing ztunnel) and, when a
# rule fails, the node half-captured. If the restore fails, that family's rules are left as they were.
# A dual-stack install is all or nothing across families too: IPv4 goes first, its chains and hooks are read with
# <iptables>-save before anything changes, and when the IPv6 transaction fails they are put back as they were
# (one more -restore --noflush, touching only our chains and hooks: kube-proxy or Docker may be editing the
# same table). If putting them back fails too, the error says so and what is left.
# Nothing loops: pods are captured in PREROUTING, which ztunnel's own sockets never traverse; in OUTPUT only
# HBONE to a local pod is redirected (to ztunnel's own inbound), and ztunnel's uid and mark return first.
#
# Exit status: 0 done (or --help), 2 bad arguments (nothing was changed), 1 an iptables command failed (the
# message names it and says what was rolled back).
set -eu
LC_ALL=C
export LC_ALL

PROG=ztunnel-iptables.sh

usage() {
  cat <<'EOF'
Usage: ztunnel-iptables.sh install|remove [options]

Installs (or removes) the nat rules that send this node's pod traffic through ztunnel: pods' TCP to the
outbound capture port, pods' DNS to the DNS proxy, HBONE and plaintext to local pods to the inbound ports.
Both are idempotent. Needs root and the nat table of iptables (and of ip6tables for IPv6). The same rules,
options and defaults as `ztunnel iptables install|remove`, without Node. Install applies each family's chains,
rules and hooks in one transaction with <iptables>-restore --noflush (e.g. iptables-restore): the chains are
never empty while it runs, and when it fails that family is left as it was.

IPv4 rules (iptables) are installed when a --pod-cidr is IPv4, IPv6 rules (ip6tables) when one is IPv6: give
both CIDRs on a dual-stack node. IPv4 goes first; its chains and hooks are read (<iptables>-save) beforehand,
and when IPv6 then fails they are put back as they were, so no family is left half-applied (if putting them
back fails too, the error says what is left). remove takes away the rules of both families (a missing binary,
table or chain is not an error; any other failure is). Install on every ztunnel start; remove only to
uninstall (the rules stay across a restart, so pod traffic fails closed while ztunnel is down).

Options (--name value or --name=value):
  --pod-interfaces <pattern>   pod veth interface names, iptables syntax ('+' wildcard)  [required, e.g. veth+]
  --pod-cidr <cidr>            addresses of the pods on this node, IPv4 or IPv6 (repeatable)  [required]
  --ztunnel-uid <uid>          never capture sockets owned by this uid (ztunnel's)
  --no-dns                     do not redirect pods' DNS (port 53) to the DNS proxy
  --outbound-port <port>       outbound capture port   [default 15001]
  --hbone-port <port>          HBONE inbound port      [default 15008]
  --plaintext-port <port>      plaintext inbound port  [default 15006]
  --dns-port <port>            DNS proxy port          [default 15053]
  --mark <mark>                never capture packets carrying this fwmark bit(s), decimal or 0x hex  [default 0x539]
  --chain-prefix <name>        names the chains <name>_PREROUTING and <name>_OUTPUT  [default AMBIENT]
  --iptables <command>         iptables binary, with <command>-restore and -save next to it   [default iptables]
  --ip6tables <command>        ip6tables binary, with <command>-restore and -save next to it  [default ip6tables]
  -h, --help                   this text

Exit status: 0 done, 2 bad arguments (nothing changed), 1 an iptables command failed (the message names it
and says what was rolled back).
EOF
}

# Problems with the arguments, one per line; all are reported together.
PROBLEMS=''
problem() {
  PROBLEMS="$PROBLEMS
  - $1"
}

# Digits without leading zeros (as a number prints), or failure when $1 is not all digits.
decimal() {
  case $1 in '' | *[!0-9]*) return 1 ;; esac
  dec=$1
  while :; do
    case $dec in 0?*) dec=${dec#0} ;; *) break ;; esac
  done
  printf '%s' "$dec"
}

# A TCP/UDP port 1-65535, printed as a number.
port_number() {
  pn=$(decimal "$1") || return 1
  [ "${#pn}" -le 5 ] && [ "$pn" -ge 1 ] && [ "$pn" -le 65535 ] || return 1
  printf '%s' "$pn"
}

# An fwmark 1-0xffffffff, decimal or 0x hex, printed as lowercase 0x hex (how iptables-rules.ts writes it).
fwmark() {
  case $1 in
    0[xX]*)
      mh=${1#0?}
      case $mh in '' | *[!0-9A-Fa-f]*) return 1 ;; esac
      while :; do
        case $mh in 0?*) mh=${mh#0} ;; *) break ;; esac
      done
      [ "${#mh}" -le 8 ] || return 1
      mv=$((0x$mh))
      ;;
    *)
      mv=$(decimal "$1") || return 1
      [ "${#mv}" -le 10 ] && [ "$mv" -le 4294967295 ] || return 1
      ;;
  esac
  # 0 would match every packet, so every packet would be excluded from capture.
  [ "$mv" -ge 1 ] || return 1
  printf '0x%x' "$mv"
}

# Dotted-quad IPv4 with no leading zeros (as Node's net.isIP accepts).
is_ipv4() {
  case $1 in *[!0-9.]* | *..* | .* | *. | '') return 1 ;; esac
  v4rest=$1.
  v4n=0
  while [ -n "$v4rest" ]; do
    v4o=${v4rest%%.*}
    v4rest=${v4rest#*.}
    case $v4o in 0 | [1-9] | [1-9][0-9] | 1[0-9][0-9] | 2[0-4][0-9] | 25[0-5]) ;; *) return 1 ;; esac
    v4n=$((v4n + 1))
  done
  [ "$v4n" -eq 4 ]
}

# Counts the colon-separated groups of 1-4 hex digits in $1 (empty: none) into HEXN; fails on a bad group.
hex_groups() {
  HEXN=0
  [ -n "$1" ] || return 0
  hgrest=$1:
  while [ -n "$hgrest" ]; do
    hg=${hgrest%%:*}
    hgrest=${hgrest#*:}
    case $hg in '' | ?????* | *[!0-9A-Fa-f]*) return 1 ;; esac
    HEXN=$((HEXN + 1))
  done
}

# IPv6 in any RFC 4291 text form (:: once at most, an IPv4 tail allowed); no zone index.
is_ipv6() {
  v6=$1
  case $v6 in *:*) ;; *) return 1 ;; esac
  case $v6 in *[!0-9A-Fa-f:.]* | *:::* | *::*::*) return 1 ;; esac
  case $v6 in
    *.*)
      v6tail=${v6##*:}
      is_ipv4 "$v6tail" || return 1
      v6=${v6%"$v6tail"}0:0
      ;;
  esac
  case $v6 in
    *::*)
      hex_groups "${v6%%::*}" || return 1
      v6left=$HEXN
      hex_groups "${v6#*::}" || return 1
      [ $((v6left + HEXN)) -le 7 ]
      ;;
    *)
      hex_groups "$v6" || return 1
      [ "$HEXN" -eq 8 ]
      ;;
  esac
}

# Family (4 or 6) of an address or CIDR, or failure when it is neither.
cidr_family() {
  cf_ip=${1%%/*}
  if is_ipv4 "$cf_ip"; then
    cf_family=4
    cf_max=32
  elif is_ipv6 "$cf_ip"; then
    cf_family=6
    cf_max=128
  else
    return 1
  fi
  case $1 in
    */*/*) return 1 ;;
    */*)
      cf_bits=$(decimal "${1#*/}") || return 1
      [ "${#cf_bits}" -le 3 ] && [ "$cf_bits" -le "$cf_max" ] || return 1
      ;;
  esac
  printf '%s' "$cf_family"
}

# --- arguments ---------------------------------------------------------------------------------------------

for arg in "$@"; do
  case $arg in -h | --help)
    usage
    exit 0
    ;;
  esac
done

ACTION=${1-}
case $ACTION in
  install | remove) shift ;;
  *)
    problem "expected 'install' or 'remove' as the first argument, got \"$ACTION\""
    [ $# -eq 0 ] || shift
    ;;
esac

POD_INTERFACES=''
# Whether the option was given at all: an invalid value is reported as such, not also as missing.
POD_INTERFACES_GIVEN=false
POD_CIDR_GIVEN=false
CIDRS4=''
CIDRS6=''
UID_OWNER=''
DNS=true
OUTBOUND_PORT=15001
HBONE_PORT=15008
PLAINTEXT_PORT=15006
DNS_PORT=15053
MARK=0x539
CHAIN_PREFIX=AMBIENT
IPTABLES=iptables
IP6TABLES=ip6tables

while [ $# -gt 0 ]; do
  arg=$1
  shift
  case $arg in
    --no-dns)
      DNS=false
      continue
      ;;
    --*=*)
      name=${arg%%=*}
      value=${arg#*=}
      ;;
    --?*)
      name=$arg
      # No value starts with --: "--hbone-port --no-dns" lacks the port, it does not mean port "--no-dns".
      if [ $# -gt 0 ] && case $1 in --*) false ;; *) true ;; esac; then
        value=$1
        shift
      else
        case $name in
          --pod-interfaces) POD_INTERFACES_GIVEN=true ;;
          --pod-cidr) POD_CIDR_GIVEN=true ;;
        esac
        problem "$name needs a value (see $PROG --help)"
        continue
      fi
      ;;
    *)
      problem "unknown option \"$arg\" (see $PROG --help)"
      continue
      ;;
  esac
  case $name in
    --pod-interfaces)
      POD_INTERFACES_GIVEN=true
      # iptables' interface syntax: a Linux interface name (at most 15 characters, not starting with '-', which
      # iptables would read as an option), optionally ending in the '+' wildcard.
      pat=${value%+}
      case $pat in
        '' | [!A-Za-z0-9_]* | *[!A-Za-z0-9_.-]* | ????????????????*)
          problem "--pod-interfaces: \"$value\" is not an interface name pattern (up to 15 letters, digits, _ . -, not starting with -, optionally ending in +; e.g. veth+)"
          ;;
        *) POD_INTERFACES=$value ;;
      esac
      ;;
    --pod-cidr)
      POD_CIDR_GIVEN=true
      if family=$(cidr_family "$value"); then
        if [ "$family" = 4 ]; then CIDRS4="$CIDRS4 $value"; else CIDRS6="$CIDRS6 $value"; fi
      else
        problem "--pod-cidr: \"$value\" is not an address or CIDR (e.g. 10.248.1.0/24 or fd00:248:1::/64)"
      fi
      ;;
    --ztunnel-uid)
      if uid=$(decimal "$value") && [ "${#uid}" -le 10 ] && [ "$uid" -lt 4294967295 ]; then
        UID_OWNER=$uid
      else
        problem "--ztunnel-uid: \"$value\" is not a uid (a number, e.g. 1337)"
      fi
      ;;
    --outbound-port | --hbone-port | --plaintext-port | --dns-port)
      if n=$(port_number "$value"); then
        case $name in
          --outbound-port) OUTBOUND_PORT=$n ;;
          --hbone-port) HBONE_PORT=$n ;;
          --plaintext-port) PLAINTEXT_PORT=$n ;;
          --dns-port) DNS_PORT=$n ;;
        esac
      else
        problem "$name: \"$value\" is not a port number (1-65535)"
      fi
      ;;
    --mark)
      if m=$(fwmark "$value"); then
        MARK=$m
      else
        problem "--mark: \"$value\" is not a fwmark (1-0xffffffff, decimal or 0x hex)"
      fi
      ;;
    --chain-prefix)
      # iptables chain names are at most 28 characters; the longest suffix is _PREROUTING (11).
      case $value in
        [A-Za-z]*[!A-Za-z0-9_-]* | [!A-Za-z]* | '' | ??????????????????*)
          problem "--chain-prefix: \"$value\" is not a chain name prefix (a letter, then up to 16 letters, digits, _ or -)"
          ;;
        *) CHAIN_PREFIX=$value ;;
      esac
      ;;
    --iptables)
      if [ -n "$value" ]; then IPTABLES=$value; else problem "--iptables needs a command name"; fi
      ;;
    --ip6tables)
      if [ -n "$value" ]; then IP6TABLES=$value; else problem "--ip6tables needs a command name"; fi
      ;;
    *)
      problem "unknown option \"$arg\" (see $PROG --help)"
      ;;
  esac
done

[ "$POD_INTERFACES_GIVEN" = true ] || problem "--pod-interfaces is required (the pod veth names on this node, e.g. veth+)"
[ "$POD_CIDR_GIVEN" = true ] || problem "--pod-cidr is required (the addresses of the pods on this node)"

if [ -n "$PROBLEMS" ]; then
  printf '%s: invalid arguments:%s\nRun %s --help.\n' "$PROG" "$PROBLEMS" "$PROG" >&2
  exit 2
fi

PRE=${CHAIN_PREFIX}_PREROUTING
OUT=${CHAIN_PREFIX}_OUTPUT

# --- iptables ----------------------------------------------------------------------------------------------

# The restore input of one family, in the order captureRules() (iptables-rules.ts) builds the rules and
# restoreInput() writes them: the chain declarations (with --noflush each creates its chain, or flushes it when
# it exists), the hooks not yet in place ($3, "PREROUTING OUTPUT" or part of it), the rules, COMMIT. Every word
# was checked above, so none holds a space or a quote that could change what iptables-restore reads.
restore_input() {
  cidrs=$1
  hooks=$2
  printf '*nat\n:%s - [0:0]\n:%s - [0:0]\n' "$PRE" "$OUT"
  for hook in $hooks; do
    case $hook in
      # Inserted at the top: a nat chain before ours (kube-proxy's, Docker's) could end nat processing first.
      PREROUTING) printf -- '-I PREROUTING 1 -j %s\n' "$PRE" ;;
      OUTPUT) printf -- '-I OUTPUT 1 -j %s\n' "$OUT" ;;
    esac
  done
  printf -- '-A %s -m mark --mark %s/%s -j RETURN\n' "$PRE" "$MARK" "$MARK"
  if [ "$DNS" = true ]; then
    for proto in udp tcp; do
      printf -- '-A %s -i %s -p %s --dport 53 -j REDIRECT --to-ports %s\n' "$PRE" "$POD_INTERFACES" "$proto" "$DNS_PORT"
    done
  fi
  for cidr in $cidrs; do
    printf -- '-A %s -p tcp -d %s --dport %s -j REDIRECT --to-ports %s\n' "$PRE" "$cidr" "$HBONE_PORT" "$HBONE_PORT"
  done
  printf -- '-A %s -i %s -p tcp -j REDIRECT --to-ports %s\n' "$PRE" "$POD_INTERFACES" "$OUTBOUND_PORT"
  for cidr in $cidrs; do
    printf -- '-A %s -p tcp -d %s -j REDIRECT --to-ports %s\n' "$PRE" "$cidr" "$PLAINTEXT_PORT"
  done
  for cidr in $cidrs; do
    printf -- '-A %s -p tcp -d %s --dport %s -j REDIRECT --to-ports %s\n' "$OUT" "$cidr" "$HBONE_PORT" "$HBONE_PORT"
  done
  if [ -n "$UID_OWNER" ]; then
    printf -- '-A %s -m owner --uid-owner %s -j RETURN\n' "$OUT" "$UID_OWNER"
  fi
  printf -- '-A %s -m mark --mark %s/%s -j RETURN\n' "$OUT" "$MARK" "$MARK"
  printf 'COMMIT\n'
}

# An iptables command's error output on one line, without its "Try ... -h" hint, which is no help here.
one_line() {
  printf '%s\n' "$1" | grep -v -e '^Try `' -e '^[[:space:]]*$' | paste -s -d ' ' -
}

# Before anything changes: exits 1 naming the first missing command of $1$4, $1$5, ... (suffix '' is $1 itself);
# $2 is the option that names $1, $3 says why the family is installed.
require_commands() {
  rc_ipt=$1
  rc_option=$2
  rc_why=$3
  shift 3
  for rc_suffix in "$@"; do
    if ! command -v "$rc_ipt$rc_suffix" >/dev/null 2>&1; then
      printf '%s: %s: command not found (install iptables, or name the binary with --%s, which needs its -restore and -save next to it; %s)\n' \
        "$PROG" "$rc_ipt$rc_suffix" "$rc_option" "$rc_why" >&2
      exit 1
    fi
  done
}

# Installs one family ($1 the iptables command, $2 its pod CIDRs) in one transaction; on failure prints the error,
# after $3 (a prefix naming the family when other families are rolled back), and returns 1.
install_family() {
  ipt=$1
  cidrs=$2
  restore=$ipt-restore
  # Checked before the transaction: a hook is added only when absent, so a re-install never adds a second one.
  hooks=''
  "$ipt" -w -t nat -C PREROUTING -j "$PRE" >/dev/null 2>&1 || hooks="$hooks PREROUTING"
  "$ipt" -w -t nat -C OUTPUT -j "$OUT" >/dev/null 2>&1 || hooks="$hooks OUTPUT"
  restore_err=$(restore_input "$cidrs" "$hooks" | "$restore" -w --noflush 2>&1 >/dev/null) && return 0
  restore_status=$?
  restore_err=$(one_line "$restore_err")
  [ -n "$restore_err" ] || restore_err="exit status $restore_status"
  printf "%s%s --noflush failed: %s; %s's rules were left as they were (run as root, with %s, %s and the nat table available)\n" \
    "$3" "$restore" "$restore_err" "$ipt" "$ipt" "$restore" >&2
  return 1
}

# Prints the lines of `$1-save -t nat` about our chains: their declarations, their rules and the hooks that jump
# to them (ownLines() in iptables-snapshot.ts); on failure prints the error instead and returns 1.
snapshot() {
  snap_saved=$("$1-save" -t nat 2>&1) || {
    snap_err=$(one_line "$snap_saved")
    printf '%s-save -t nat failed: %s' "$1" "${snap_err:-no error message}"
    return 1
  }
  printf '%s\n' "$snap_saved" |
    grep -e "^:$PRE " -e "^:$OUT " -e "^-A $PRE " -e "^-A $OUT " -e "^-A PREROUTING -j $PRE\$" -e "^-A OUTPUT -j $OUT\$" || :
}

# Whether snapshot $1 declares chain $2.
declares() {
  printf '%s\n' "$1" | grep -q -e "^:$2 "
}

# How many times snapshot $1 has the hook "-A $2 -j $3".
hook_count() {
  printf '%s\n' "$1" | grep -c -x -F -e "-A $2 -j $3" || :
}

# The restore input that turns our chains and hooks from snapshot $2 (now) back into snapshot $1 (before this
# install), as rollbackInput() in iptables-snapshot.ts writes it: each chain that exists in either is declared
# (creating or flushing it), hooks are deleted or inserted until as many jump to it as before, then a chain that
# existed gets its old rules back (verbatim from -save, which writes them as -restore reads them) and one that did
# not is deleted.
rollback_input() {
  printf '*nat\n'
  for rb_chain in "$PRE" "$OUT"; do
    if declares "$1" "$rb_chain" || declares "$2" "$rb_chain"; then printf ':%s - [0:0]\n' "$rb_chain"; fi
  done
  for rb_chain_hook in "$PRE PREROUTING" "$OUT OUTPUT"; do
    rb_chain=${rb_chain_hook% *}
    rb_hook=${rb_chain_hook#* }
    rb_was=$(hook_count "$1" "$rb_hook" "$rb_chain")
    rb_is=$(hook_count "$2" "$rb_hook" "$rb_chain")
    # -D takes the first match, which is the hook install inserted at the top.
    while [ "$rb_is" -gt "$rb_was" ]; do
      printf -- '-D %s -j %s\n' "$rb_hook" "$rb_chain"
      rb_is=$((rb_is - 1))
    done
    while [ "$rb_is" -lt "$rb_was" ]; do
      printf -- '-I %s 1 -j %s\n' "$rb_hook" "$rb_chain"
      rb_is=$((rb_is + 1))
    done
    if declares "$1" "$rb_chain"; then
      printf '%s\n' "$1" | grep -e "^-A $rb_chain " || :
    elif declares "$2" "$rb_chain"; then
      printf -- '-X %s\n' "$rb_chain"
    fi
  done
  printf 'COMMIT\n'
}

# Puts family $2 (iptables command $1) back as snapshot $3 holds it, in one transaction, and says so; when that
# fails, says what is left (this install's rules) and what was there before, for an operator to fix by hand.
roll_back() {
  rb_ipt=$1
  # Read again rather than assumed: how many hooks are there now decides how many to delete.
  if rb_now=$(snapshot "$rb_ipt"); then
    rb_err=$(rollback_input "$3" "$rb_now" | "$rb_ipt-restore" -w --noflush 2>&1 >/dev/null) && {
      printf '%s was rolled back: its rules are as they were before this install.\n' "$2" >&2
      return 0
    }
    rb_err=$(one_line "$rb_err")
    rb_err="$rb_ipt-restore --noflush failed: ${rb_err:-no error message}"
  else
    rb_err=$rb_now
  fi
  printf "Rolling back %s failed too (%s), so the node is half-applied: %s still has this install's rules in %s and %s, hooked from PREROUTING and OUTPUT. " \
    "$2" "$rb_err" "$rb_ipt" "$PRE" "$OUT" >&2
  if [ -z "$3" ]; then
    printf 'Before this install %s had none of these chains (remove takes them away, in both families).\n' "$rb_ipt" >&2
  else
    printf 'Before this install %s-save showed these lines of them (install again with the options that made them to get them back):\n' "$rb_ipt" >&2
    printf '%s\n' "$3" | sed 's/^/    /' >&2
  fi
}

# One step of remove: succeeds when iptables did, fails (status 1) when it said there was nothing to remove (the
# chain, the hook or the nat table is not there; nf_tables and legacy wording), and otherwise prints the command
# and its error and exits 1 (the subshell of its family): anything else (not root, a chain another rule still
# jumps to) is a real failure.
remove_step() {
  step_err=$("$@" 2>&1 >/dev/null) && return 0
  case $step_err in
    *'does not exist'* | *'No chain/target/match by that name'* | *'Bad rule (does a matching rule exist'* | *"Couldn't load target"*)
      return 1
      ;;
  esac
  step_err=$(one_line "$step_err")
  [ -n "$step_err" ] || step_err='no error message'
  printf "%s failed: %s; %s's capture rules were not (all) removed (run as root, and remove any rule of your own that jumps to these chains)\n" \
    "$*" "$step_err" "$1" >&2
  exit 1
}

remove_family() {
  ipt=$1
  command -v "$ipt" >/dev/null 2>&1 || return 0
  for chain_hook in "$PRE PREROUTING" "$OUT OUTPUT"; do
    chain=${chain_hook% *}
    hook=${chain_hook#* }
    # A hook added twice by hand is removed too.
    while remove_step "$ipt" -w -t nat -D "$hook" -j "$chain"; do :; done
    remove_step "$ipt" -w -t nat -F "$chain" || :
    remove_step "$ipt" -w -t nat -X "$chain" || :
  done
}

if [ "$ACTION" = install ]; then
  # IPv4 first, as the sub-command does; a family without pod CIDRs has nothing to capture. On a dual-stack node
  # IPv4 is read before anything changes, to be put back if IPv6 fails (a single family needs no -save).
  if [ -n "$CIDRS4" ] && [ -n "$CIDRS6" ]; then
    require_commands "$IPTABLES" iptables 'IPv4 rules are installed because a --pod-cidr is IPv4' '' -restore -save
    require_commands "$IP6TABLES" ip6tables 'IPv6 rules are installed because a --pod-cidr is IPv6' '' -restore
    BEFORE4=$(snapshot "$IPTABLES") || {
      printf "%s; nothing was changed (the IPv4 (%s) rules are read first, to put them back if a later family fails; run as root, with %s-save next to %s)\n" \
        "$BEFORE4" "$IPTABLES" "$IPTABLES" "$IPTABLES" >&2
      exit 1
    }
    install_family "$IPTABLES" "$CIDRS4" '' || exit 1
    if ! install_family "$IP6TABLES" "$CIDRS6" "IPv6 ($IP6TABLES) install failed: "; then
      roll_back "$IPTABLES" "IPv4 ($IPTABLES)" "$BEFORE4"
      exit 1
    fi
  elif [ -n "$CIDRS4" ]; then
    require_commands "$IPTABLES" iptables 'IPv4 rules are installed because a --pod-cidr is IPv4' '' -restore
    install_family "$IPTABLES" "$CIDRS4" '' || exit 1
  else
    require_commands "$IP6TABLES" ip6tables 'IPv6 rules are installed because a --pod-cidr is IPv6' '' -restore
    install_family "$IP6TABLES" "$CIDRS6" '' || exit 1
  fi
else
  # Each family in a subshell, which a failed step exits: the other family is still removed, then exit 1.
  remove_failed=false
  (remove_family "$IPTABLES") || remove_failed=true
  (remove_family "$IP6TABLES") || remove_failed=true
  [ "$remove_failed" = false ] || exit 1
fi
printf '%s %s: done\n' "$PROG" "$ACTION"
