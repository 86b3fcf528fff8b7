# Sourced by bench/ab.sh and bench/link-order.sh: what both set up the same way. It finds
# nginx (NGINX), makes a scratch folder (WORK) that goes, with every process whose PID is
# in PIDS, when the script exits, and defines start_origin WORK PORT: the origin both use,
# nginx with one worker serving a 100-byte file at /small.txt on 127.0.0.1:PORT.
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$NGINX" ] || { echo "nginx is missing (apt-get install nginx-light)" >&2; exit 1; }
WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

start_origin() {
    local work=$1 port=$2
    mkdir -p "$work/www" "$work/nginx"
    head -c 100 /dev/zero | tr '\0' 'a' >"$work/www/small.txt"
    chmod -R a+rX "$work"
    cat >"$work/nginx/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 16384; }
http {
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path $work/nginx/body;
    proxy_temp_path $work/nginx/proxy;
    fastcgi_temp_path $work/nginx/fastcgi;
    uwsgi_temp_path $work/nginx/uwsgi;
    scgi_temp_path $work/nginx/scgi;
    server { listen 127.0.0.1:$port reuseport backlog=4096; root $work/www; }
}
CONF
    "$NGINX" -p "$work/nginx" -c "$work/nginx/nginx.conf" &
    PIDS+=($!)
}
