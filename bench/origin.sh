# Sourced by bench/ab.sh and bench/link-order.sh: start_origin WORK PORT starts the origin
# both use, nginx with one worker serving a 100-byte file at /small.txt on 127.0.0.1:PORT,
# its files under WORK; appends its PID to PIDS. Needs NGINX (the nginx binary).
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
