# Sourced by .ci/run: a private, throw-away PostgreSQL cluster for the tests.
# start_postgres installs PostgreSQL from Debian's packages if it is missing,
# runs initdb into a temp directory as the postgres user (trust auth, on
# 127.0.0.1 only, on a free port), with TLS on a certificate of a throw-away
# CA, starts it and exports GAAS_TEST_POSTGRES and GAAS_TEST_POSTGRES_CA.
# stop_postgres stops it and removes the directory.

pg_bin() {
	ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

start_postgres() {
	if [ -z "$(pg_bin)" ] || [ ! -x "$(pg_bin)/initdb" ] || ! command -v openssl >/dev/null; then
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql openssl >/dev/null
	fi
	local bin port
	bin=$(pg_bin)
	PG_DIR=$(mktemp -d /tmp/gaas-pg.XXXXXX)
	chown postgres "$PG_DIR"
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null ||
		echo $((20000 + RANDOM % 20000)))
	runuser -u postgres -- "$bin/initdb" -D "$PG_DIR/data" -U postgres --auth=trust -E UTF8 >"$PG_DIR/initdb.log" 2>&1 ||
		{ cat "$PG_DIR/initdb.log"; return 1; }
	# A CA and a server certificate for the name localhost (not for the
	# address 127.0.0.1), so that the tests can
	# see certificate verification accept and refuse.
	(
		cd "$PG_DIR" &&
			openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=gaas test CA" -keyout ca.key -out ca.crt &&
			openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout server.key -out server.csr &&
			printf 'subjectAltName=DNS:localhost\n' >san.ext &&
			openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile san.ext -out server.crt &&
			chown postgres server.key server.crt && chmod 600 server.key
	) >"$PG_DIR/openssl.log" 2>&1 || { cat "$PG_DIR/openssl.log"; return 1; }
	runuser -u postgres -- "$bin/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
		-o "-c listen_addresses=127.0.0.1 -p $port -k $PG_DIR -c max_connections=200 -c fsync=off -c ssl=on -c ssl_cert_file=$PG_DIR/server.crt -c ssl_key_file=$PG_DIR/server.key" start >/dev/null ||
		{ cat "$PG_DIR/server.log"; return 1; }
	PG_BIN=$bin
	export GAAS_TEST_POSTGRES="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
	export GAAS_TEST_POSTGRES_CA="$PG_DIR/ca.crt"
	echo "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port"
}

stop_postgres() {
	if [ -n "${PG_DIR:-}" ] && [ -d "$PG_DIR/data" ]; then
		runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true
		rm -rf "$PG_DIR"
	fi
}
