"""Parsing Slurm 22.05's own output, as captured from the real local cluster
(tests/slurm_cluster.py): ``scontrol show job`` (multi-line and ``-o``) and jobcomp/filetxt."""

from __future__ import annotations

from slurm_cluster import parse_exit_code, parse_key_values

# `scontrol show job 2` for a batch script that exited 3 (Slurm 22.05.8).
SCONTROL_FAILED = """\
JobId=2 JobName=bolt fail job
   UserId=root(0) GroupId=root(0) MCS_label=N/A
   Priority=4294901758 Nice=0 Account=(null) QOS=(null)
   JobState=FAILED Reason=NonZeroExitCode Dependency=(null)
   Requeue=1 Restarts=0 BatchFlag=1 Reboot=0 ExitCode=3:0
   RunTime=00:00:00 TimeLimit=UNLIMITED TimeMin=N/A
   SubmitTime=2026-12-01T21:00:38 EligibleTime=2026-12-01T21:00:38
   AccrueTime=2026-12-01T21:00:38
   StartTime=2026-12-01T21:00:40 EndTime=2026-12-01T21:00:40 Deadline=N/A
   SuspendTime=None SecsPreSuspend=0 LastSchedEval=2026-12-01T21:00:40 Scheduler=Main
   Partition=debug AllocNode:Sid=localhost:5959
   ReqNodeList=(null) ExcNodeList=(null)
   NodeList=localhost
   BatchHost=localhost
   NumNodes=1 NumCPUs=1 NumTasks=1 CPUs/Task=1 ReqB:S:C:T=0:0:*:*
   TRES=cpu=1,node=1,billing=1
   Socks/Node=* NtasksPerN:B:S:C=0:0:*:* CoreSpec=*
   MinCPUsNode=1 MinMemoryNode=0 MinTmpDiskNode=0
   Features=(null) DelayBoot=00:00:00
   OverSubscribe=OK Contiguous=0 Licenses=(null) Network=(null)
   Command=/tmp/bolt-slurm-rkw66hsv/jobs/fail.sh
   WorkDir=/work/main/tests
   StdErr=/tmp/bolt-slurm-rkw66hsv/jobs/fail.out
   StdIn=/dev/null
   StdOut=/tmp/bolt-slurm-rkw66hsv/jobs/fail.out
   Power=
   

"""

# `scontrol show job -o 3` (one line) for a `sleep 300` job after scancel.
SCONTROL_CANCELLED_ONELINE = (
    "JobId=3 JobName=sleep.sh UserId=root(0) GroupId=root(0) MCS_label=N/A "
    "Priority=4294901757 Nice=0 Account=(null) QOS=(null) JobState=CANCELLED Reason=None "
    "Dependency=(null) Requeue=1 Restarts=0 BatchFlag=1 Reboot=0 ExitCode=0:15 "
    "RunTime=00:00:00 TimeLimit=UNLIMITED TimeMin=N/A SubmitTime=2026-12-01T21:00:38 "
    "DerivedExitCode=0:0 Partition=debug AllocNode:Sid=localhost:5959 NodeList=localhost "
    "TRES=cpu=1,node=1,billing=1 Command=/tmp/jobs/sleep.sh WorkDir=/work/main/tests "
    "StdOut=/tmp/jobs/sleep.out Power= \n"
)

# A jobcomp/filetxt line (JobCompLoc); note Name= (not JobName=) and empty values.
JOBCOMP_FAILED = (
    "JobId=2 UserId=root(0) GroupId=root(0) Name=bolt fail job JobState=FAILED "
    "Partition=debug TimeLimit=UNLIMITED StartTime=2026-12-01T21:00:40 "
    "EndTime=2026-12-01T21:00:40 NodeList=localhost NodeCnt=1 ProcCnt=1 "
    "WorkDir=/work/main/tests ReservationName= Tres=cpu=1,mem=24105M,node=1,billing=1 "
    "Account= QOS= WcKey= Cluster=unknown SubmitTime=2026-12-01T21:00:38 "
    "EligibleTime=2026-12-01T21:00:38 DerivedExitCode=0:0 ExitCode=3:0 \n"
)


def test_multiline_scontrol_show_job():
    job = parse_key_values(SCONTROL_FAILED)
    assert job["JobId"] == "2"
    assert job["JobName"] == "bolt fail job"  # a value with spaces stays whole
    assert (job["JobState"], job["Reason"], job["ExitCode"]) == ("FAILED", "NonZeroExitCode", "3:0")
    assert job["ReqB:S:C:T"] == "0:0:*:*" and job["Socks/Node"] == "*"
    assert job["TRES"] == "cpu=1,node=1,billing=1"  # '=' inside a value
    assert job["Power"] == ""


def test_oneline_scontrol_keeps_exit_code_apart_from_derived():
    job = parse_key_values(SCONTROL_CANCELLED_ONELINE)
    assert job["JobState"] == "CANCELLED"
    assert job["ExitCode"] == "0:15" and job["DerivedExitCode"] == "0:0"
    assert parse_exit_code(job["ExitCode"]) == (0, 15)


def test_jobcomp_line():
    entry = parse_key_values(JOBCOMP_FAILED)
    assert (entry["JobId"], entry["Name"], entry["JobState"]) == ("2", "bolt fail job", "FAILED")
    assert entry["ReservationName"] == "" and entry["Account"] == ""
    assert parse_exit_code(entry["ExitCode"]) == (3, 0)


def test_exit_code_without_signal():
    assert parse_exit_code("3") == (3, 0)
