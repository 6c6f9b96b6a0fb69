#!/usr/bin/env bash
# Recover the plaintext of a keepslot cipher stream (format version 1) with
# stock openssl and coreutils only. See ../FORMAT.md.
#
#   KEEPSLOT_PASSWORD=... bash openssl-recover.sh backup.enc > plaintext
#
# A password with bytes a shell cannot hold (NUL) can be given in hex instead,
# as KEEPSLOT_PASSWORD_HEX.
#
# This decrypts but does NOT authenticate: use it only when the keepslot
# library is unavailable, and prefer a copy whose integrity you trust.
set -euo pipefail
f=$1
size=$(stat -c %s "$f")
hex() { od -An -tx1 -j "$1" -N "$2" "$f" | tr -d ' \n'; }

[ "$(head -c 8 "$f")" = KEEPSLOT ] || { echo "not a keepslot stream" >&2; exit 1; }
[ "$(od -An -tu1 -j 8 -N 1 "$f" | tr -d ' ')" = 1 ] || { echo "not format version 1" >&2; exit 1; }
logn=$(od -An -tu1 -j 10 -N 1 "$f" | tr -d ' ')
r=$(od -An -tu4 --endian=big -j 12 -N 4 "$f" | tr -d ' ')
p=$(od -An -tu4 --endian=big -j 16 -N 4 "$f" | tr -d ' ')
salt=$(hex 20 32)
iv=$(hex 52 16)
len=$(od -An -tu8 --endian=big -j $((size - 40)) -N 8 "$f" | tr -d ' ')

# 64 bytes of scrypt: the first 32 are the AES-256 key, the last 32 the MAC key.
# hexpass: keeps the password bytes exact whatever they contain.
passhex=${KEEPSLOT_PASSWORD_HEX:-$(printf '%s' "$KEEPSLOT_PASSWORD" | od -An -tx1 | tr -d ' \n')}
dk=$(openssl kdf -keylen 64 -kdfopt hexpass:"$passhex" -kdfopt hexsalt:"$salt" \
	-kdfopt n:$((1 << logn)) -kdfopt r:"$r" -kdfopt p:"$p" \
	-kdfopt maxmem_bytes:1100000000 SCRYPT | tr -d ':\n')
key=${dk:0:64}

# The body is bytes [104, 104+len): one AES-256-CTR keystream.
dd if="$f" iflag=skip_bytes,count_bytes skip=104 count="$len" bs=1M status=none |
	openssl enc -d -aes-256-ctr -K "$key" -iv "$iv"
