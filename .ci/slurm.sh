# Sourced by .ci/run: a throw-away one-node Slurm 22.05 cluster (Debian 12's
# packages) for the tests of the Slurm executor, as root, without systemd,
# cgroups or slurmdbd. The node has two fake a100 GPUs and one fake h100.
# start_slurm installs the packages if missing, writes the configuration
# into a temp directory, starts munged, slurmctld and slurmd, waits until
# the node is idle and exports GAAS_TEST_SLURM (the slurm.conf).
# stop_slurm stops the daemons and removes the directory.
#
# What it relies on:
# - Slurm 22.05 drops a GPU GRES that has no File= and refuses regular
#   files there: fake character devices with /dev/null's numbers work.
# - The node claims 8 CPUs whatever the machine has (config_overrides), so
#   that jobs wait for GPUs, never for CPUs.
# - proctrack/linuxproc and task/none need no cgroups.
# - Without slurmdbd, sacct -c reads the jobcomp/filetxt completion log.

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null ||
		echo $((20000 + RANDOM % 20000))
}

start_slurm() {
	if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v sbatch >/dev/null; then
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null
	fi
	SLURM_DIR=$(mktemp -d /tmp/gaas-slurm.XXXXXX)
	chmod 0755 "$SLURM_DIR"
	local d=$SLURM_DIR h ctld_port slurmd_port
	h=$(hostname -s)
	# Ports of its own, so that another cluster on the machine is no matter.
	ctld_port=$(free_port)
	slurmd_port=$(free_port)
	while [ "$slurmd_port" = "$ctld_port" ]; do slurmd_port=$(free_port); done
	mkdir -p "$d/state" "$d/spool" "$d/log"
	install -d -o munge -g munge -m 0755 /run/munge # the key comes from munge's postinst
	pgrep -x munged >/dev/null || runuser -u munge -- /usr/sbin/munged
	for i in 0 1 2; do mknod -m 0666 "$d/gpu$i" c 1 3; done
	cat >"$d/slurm.conf" <<CONF
ClusterName=gaasci
SlurmctldHost=$h(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
StateSaveLocation=$d/state
SlurmdSpoolDir=$d/spool
SlurmctldPidFile=$d/slurmctld.pid
SlurmdPidFile=$d/slurmd.pid
SlurmctldLogFile=$d/log/slurmctld.log
SlurmdLogFile=$d/log/slurmd.log
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
GresTypes=gpu
ReturnToService=2
MinJobAge=3600
KillWait=5
SlurmdParameters=config_overrides
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/linux
JobCompType=jobcomp/filetxt
JobCompLoc=$d/log/jobcomp.txt
NodeName=$h NodeAddr=127.0.0.1 CPUs=8 RealMemory=1000 Gres=gpu:a100:2,gpu:h100:1
PartitionName=gpu Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
	cat >"$d/gres.conf" <<CONF
NodeName=$h Name=gpu Type=a100 File=$d/gpu[0-1]
NodeName=$h Name=gpu Type=h100 File=$d/gpu2
CONF
	SLURM_CONF=$d/slurm.conf /usr/sbin/slurmctld
	SLURM_CONF=$d/slurm.conf /usr/sbin/slurmd
	for _ in $(seq 60); do
		[ "$(SLURM_CONF=$d/slurm.conf sinfo -h -o %T 2>/dev/null)" = idle ] && break
		sleep 0.5
	done
	if [ "$(SLURM_CONF=$d/slurm.conf sinfo -h -o %T 2>/dev/null)" != idle ]; then
		tail -n 20 "$d"/log/*.log
		return 1
	fi
	export GAAS_TEST_SLURM=$d/slurm.conf
}

stop_slurm() {
	[ -n "${SLURM_DIR:-}" ] || return 0
	local pid
	for pid in "$SLURM_DIR/slurmd.pid" "$SLURM_DIR/slurmctld.pid"; do
		[ -f "$pid" ] && kill "$(cat "$pid")" 2>/dev/null || true
	done
	sleep 1
	rm -rf "$SLURM_DIR"
}
