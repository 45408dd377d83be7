#!/bin/sh
# Two "hosts" on this machine for multi-node runs of `mpirun`: network
# namespaces nabla-h1 (10.77.0.1) and nabla-h2 (10.77.0.2), each with its
# own hostname, joined to this namespace (10.77.0.254, where mpirun runs)
# by a bridge and veth pairs. Open MPI reaches them through an "rsh agent"
# that runs its daemon in the namespace instead of over ssh, so the ranks
# talk over TCP between two network stacks, as between two machines.
# Needs root (ip netns).
#
#   tools/two_hosts.sh up DIR     # makes the hosts; DIR/hostfile and DIR/agent
#   mpirun $(tools/two_hosts.sh flags DIR) -np 2 nabla train --distributed …
#   tools/two_hosts.sh down
set -eu
net=10.77.0
case "${1:-}" in
up)
    dir=$2
    "$0" down
    mkdir -p "$dir"
    ip link add nabla-br type bridge
    ip addr add $net.254/24 dev nabla-br
    ip link set nabla-br up
    for h in 1 2; do
        ip netns add nabla-h$h
        ip link add nabla-v$h type veth peer name nabla-p$h
        ip link set nabla-p$h netns nabla-h$h
        ip link set nabla-v$h master nabla-br
        ip link set nabla-v$h up
        ip netns exec nabla-h$h ip addr add $net.$h/24 dev nabla-p$h
        ip netns exec nabla-h$h ip link set nabla-p$h up
        ip netns exec nabla-h$h ip link set lo up
    done
    printf '%s slots=1\n' $net.1 $net.2 >"$dir/hostfile"
    # agent HOST COMMAND...: COMMAND in HOST's namespace, under its own name
    cat >"$dir/agent" <<'AGENT'
#!/bin/sh
host=$1; shift
ns=nabla-h${host##*.}
exec ip netns exec "$ns" unshare --uts sh -c "hostname $ns; $*"
AGENT
    chmod +x "$dir/agent"
    ;;
flags)
    dir=$2
    echo "--hostfile $dir/hostfile --mca plm_rsh_agent $dir/agent" \
        "--mca oob_tcp_if_include $net.0/24 --mca btl self,tcp --mca btl_tcp_if_include $net.0/24"
    ;;
down)
    for h in 1 2; do ip netns del nabla-h$h 2>/dev/null || true; done
    ip link del nabla-br 2>/dev/null || true
    ;;
*)
    echo "usage: $0 up DIR | flags DIR | down" >&2
    exit 2
    ;;
esac
