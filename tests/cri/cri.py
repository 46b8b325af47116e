"""A small CRI client for tests/cri.sh: it makes the calls a kubelet makes,
with requests built from a Kubernetes manifest (a DaemonSet, Deployment or
Pod), against a CRI runtime's socket.

usage: cri.py facts MANIFEST               what the test checks, as NAME=VALUE
       cri.py probe MANIFEST IP            the readiness probe, until it passes
       cri.py -s SOCKET COMMAND ...        a CRI call, results as "key value":
  version                       the runtime's name and versions
  wait-ready [SECONDS]          until RuntimeReady and NetworkReady
  image-status REF              id, repo digests and user of an image
  pull REF                      ImageService.PullImage, as the kubelet asks it
  run MANIFEST [--log-root DIR] [--cgroup-root PATH] [--suffix S]
      [--host-port OLD=NEW]... [--image REF]
                                RunPodSandbox, the image by imagePullPolicy,
                                CreateContainer and StartContainer
  stop POD CONTAINER GRACE      StopContainer with the grace period, then
                                StopPodSandbox (the kubelet's order)
  stop-sandbox POD CONTAINER    StopPodSandbox alone, then the container's end
  remove POD                    RemovePodSandbox
  clean                         stop and remove every pod sandbox

The messages come from cri_pb2, which protoc generates from cri.proto (the
test does it in its work directory and puts that on PYTHONPATH).
"""
import json
import os
import re
import shlex
import sys
import time
import urllib.error
import urllib.request
import uuid

import yaml

# The Kubernetes namespace the pods are given (metadata and labels only).
NAMESPACE = "default"
# The kubelet's HTTP probes say who they are (kube-probe/MAJOR.MINOR).
KUBE_PROBE_AGENT = "kube-probe/1.28"


# ---------------------------------------------------------------- manifest

def pod_of(path):
    """The pod spec and metadata of the first workload in the file."""
    with open(path) as f:
        for doc in yaml.safe_load_all(f):
            if not doc:
                continue
            if doc.get("kind") == "Pod":
                return doc["metadata"], doc["spec"], doc["metadata"]["name"]
            tmpl = doc.get("spec", {}).get("template")
            if tmpl:
                return tmpl.get("metadata", {}), tmpl["spec"], \
                    doc["metadata"]["name"]
    sys.exit("%s: no pod template found" % path)


SUFFIX = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50,
          "Ei": 2**60, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
          "P": 10**15, "E": 10**18, "m": 10**-3, "": 1}


def quantity(q):
    """A Kubernetes quantity ("64Mi", "250m", "1.5", "1e3") as a number."""
    m = re.fullmatch(r"([0-9.]+)(?:[eE]([-+]?[0-9]+))?([A-Za-z]*)", str(q))
    if not m or m.group(3) not in SUFFIX:
        sys.exit("bad quantity %r" % q)
    value = float(m.group(1)) * 10 ** int(m.group(2) or 0)
    return value * SUFFIX[m.group(3)]


def mem_capacity():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return 0


def resources(c):
    """LinuxContainerResources as the kubelet computes them (cgroupfs,
    CFS quota on): shares from the CPU request, quota from the CPU limit,
    the memory limit, and the Burstable QoS class's oom_score_adj."""
    res = c.get("resources", {})
    req, lim = res.get("requests", {}), res.get("limits", {})
    cpu_req = quantity(req.get("cpu", lim.get("cpu", 0)))
    mem_req = quantity(req.get("memory", lim.get("memory", 0)))
    out = {"cpu_period": 100000,
           "cpu_shares": max(2, int(cpu_req * 1024)),
           "cpu_quota": int(quantity(lim.get("cpu", 0)) * 100000),
           "memory_limit_in_bytes": int(quantity(lim.get("memory", 0)))}
    if not out["cpu_quota"]:
        del out["cpu_quota"]
    # QoS: Guaranteed when both limits are set and equal the requests,
    # BestEffort with neither, else Burstable (scaled by the request).
    guaranteed = "cpu" in lim and "memory" in lim and all(
        quantity(req.get(k, lim[k])) == quantity(lim[k])
        for k in ("cpu", "memory"))
    if guaranteed:
        out["oom_score_adj"] = -997
    elif not req and not lim:
        out["oom_score_adj"] = 1000
    else:
        adj = 1000 - int(1000 * mem_req) // mem_capacity()
        out["oom_score_adj"] = 999 if adj >= 1000 else max(3, adj)
    return out


def sec(pod, c, key):
    """A securityContext field: the container's, else the pod's."""
    v = c.get("securityContext", {}).get(key)
    return pod.get("securityContext", {}).get(key) if v is None else v


def probe_of(c):
    p = c.get("readinessProbe") or c.get("livenessProbe") or {}
    return p.get("httpGet"), int(p.get("timeoutSeconds", 1))


def probe_port(c, port):
    """A probe port by number or by the name of a container port."""
    if isinstance(port, int) or str(port).isdigit():
        return int(port)
    for p in c.get("ports", []):
        if p.get("name") == port:
            return int(p["containerPort"])
    sys.exit("probe port %r not found" % port)


def facts(path):
    """What the shell checks, from the manifest (shell assignments)."""
    _, pod, _ = pod_of(path)
    c = pod["containers"][0]
    ports = [p for p in c.get("ports", []) if p.get("hostPort")]
    res = resources(c)
    out = {
        "IMAGE": c["image"],
        "HOST_PORT": ports[0]["hostPort"] if ports else "",
        "PROBE_TIMEOUT": probe_of(c)[1],
        "GRACE": pod.get("terminationGracePeriodSeconds", 30),
        "RUN_AS_USER": sec(pod, c, "runAsUser"),
        "RUN_AS_GROUP": sec(pod, c, "runAsGroup"),
        "MEM_LIMIT": res["memory_limit_in_bytes"],
        "CPU_QUOTA": res.get("cpu_quota", ""),
        "CPU_PERIOD": res["cpu_period"],
        "OOM_SCORE_ADJ": res["oom_score_adj"],
    }
    for k, v in out.items():
        print("%s=%s" % (k, shlex.quote(str(v if v is not None else ""))))


def probe(path, ip):
    """GET the readiness probe's path on the pod's IP, as the kubelet does
    (its User-Agent, the manifest's timeout per try), until it answers
    200-399; at most 30 tries, one every 0.2 s (the kubelet waits
    periodSeconds between tries; the test does not need to)."""
    _, pod, _ = pod_of(path)
    c = pod["containers"][0]
    http, timeout = probe_of(c)
    url = "%s://%s:%d%s" % (http.get("scheme", "HTTP").lower(), ip,
                            probe_port(c, http["port"]), http["path"])
    req = urllib.request.Request(url, headers={
        "User-Agent": KUBE_PROBE_AGENT, "Accept": "*/*"})
    # The pod's address is on our bridge: no proxy may take the request.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    err = None
    for attempt in range(1, 31):
        t0 = time.monotonic()
        try:
            with opener.open(req, timeout=timeout) as r:
                code = r.status
        except urllib.error.HTTPError as e:
            code, err = e.code, e
        except OSError as e:
            code, err = None, e
        ms = (time.monotonic() - t0) * 1000
        if code and 200 <= code < 400:
            print("url %s\ncode %d\nms %.1f\nattempts %d"
                  % (url, code, ms, attempt))
            return
        time.sleep(0.2)
    sys.exit("probe %s failed: %s" % (url, err))


# ---------------------------------------------------------------- CRI

class Cri:
    def __init__(self, sock):
        import grpc
        import cri_pb2
        self.grpc, self.pb = grpc, cri_pb2
        self.channel = grpc.insecure_channel("unix://" + sock)

    def call(self, service, method, deadline=60, **fields):
        """One unary call, by the method's name in cri.proto."""
        desc = self.pb.DESCRIPTOR.services_by_name[service] \
            .methods_by_name[method]
        req_cls = getattr(self.pb, desc.input_type.name)
        resp_cls = getattr(self.pb, desc.output_type.name)
        fn = self.channel.unary_unary(
            "/runtime.v1.%s/%s" % (service, method),
            request_serializer=req_cls.SerializeToString,
            response_deserializer=resp_cls.FromString)
        return fn(req_cls(**fields), timeout=deadline)

    def rt(self, method, **kw):
        return self.call("RuntimeService", method, **kw)

    def img(self, method, **kw):
        return self.call("ImageService", method, **kw)

    def image_status(self, ref):
        return self.img("ImageStatus",
                        image=self.pb.ImageSpec(image=ref)).image

    def container_pid(self, cid):
        st = self.rt("ContainerStatus", container_id=cid, verbose=True)
        info = json.loads(st.info.get("info", "{}"))
        return st.status, info.get("pid", 0)


def say(**kv):
    for k, v in kv.items():
        print(k, v)


def print_image(im):
    say(id=im.id, tags=",".join(im.repo_tags) or "-",
        digests=",".join(im.repo_digests) or "-",
        uid=im.uid.value if im.HasField("uid") else "-",
        username=im.username or "-")


def sandbox_config(cri, meta, pod, name, opts):
    pb = cri.pb
    uid = str(uuid.uuid4())
    podname = "%s-%s" % (name, opts["suffix"])
    ns_opts = pb.NamespaceOption(
        network=pb.NODE if pod.get("hostNetwork") else pb.POD,
        pid=pb.POD if pod.get("shareProcessNamespace") else pb.CONTAINER,
        ipc=pb.NODE if pod.get("hostIPC") else pb.POD)
    psc = pod.get("securityContext", {})
    ssc = pb.LinuxSandboxSecurityContext(namespace_options=ns_opts)
    if "runAsUser" in psc:
        ssc.run_as_user.value = psc["runAsUser"]
    if "runAsGroup" in psc:
        ssc.run_as_group.value = psc["runAsGroup"]
    if psc.get("seccompProfile", {}).get("type") == "RuntimeDefault":
        ssc.seccomp.profile_type = pb.SecurityProfile.RuntimeDefault
    else:
        ssc.seccomp.profile_type = pb.SecurityProfile.Unconfined
    ports = []
    for c in pod["containers"]:
        for p in c.get("ports", []):
            host = p.get("hostPort", 0)
            host = opts["host_ports"].get(host, host)
            ports.append(pb.PortMapping(
                protocol=getattr(pb, p.get("protocol", "TCP")),
                container_port=p["containerPort"], host_port=host,
                host_ip=p.get("hostIP", "")))
    labels = dict(meta.get("labels", {}))
    labels.update({"io.kubernetes.pod.name": podname,
                   "io.kubernetes.pod.namespace": NAMESPACE,
                   "io.kubernetes.pod.uid": uid})
    log_dir = os.path.join(opts["log_root"],
                           "%s_%s_%s" % (NAMESPACE, podname, uid))
    cfg = pb.PodSandboxConfig(
        metadata=pb.PodSandboxMetadata(name=podname, uid=uid,
                                       namespace=NAMESPACE, attempt=0),
        # The kubelet names only a pod with its own network namespace.
        hostname="" if pod.get("hostNetwork") else podname,
        log_directory=log_dir, port_mappings=ports, labels=labels,
        annotations=meta.get("annotations", {}),
        linux=pb.LinuxPodSandboxConfig(
            cgroup_parent="%s/pod%s" % (opts["cgroup_root"], uid),
            security_context=ssc))
    return cfg, ns_opts


def ensure_image(cri, image, policy, scfg):
    """The kubelet's image step: Never must find it, Always pulls, else
    pull only when absent. Returns (image ID, pulled)."""
    if not policy:
        policy = "Always" if image.endswith(":latest") or ":" not in \
            image.rsplit("/", 1)[-1] else "IfNotPresent"
    present = cri.image_status(image)
    if policy == "Never":
        if not present.id:
            sys.exit("ErrImageNeverPull: %s is not present" % image)
        return present.id, False
    if policy == "IfNotPresent" and present.id:
        return present.id, False
    resp = cri.img("PullImage", deadline=180,
                   image=cri.pb.ImageSpec(image=image), sandbox_config=scfg)
    return resp.image_ref, True


def verify_non_root(pod, c, im):
    """The kubelet refuses to start a runAsNonRoot container that would run
    as root: the effective UID is runAsUser, else the image's user."""
    if not sec(pod, c, "runAsNonRoot"):
        return "not asked"
    uid = sec(pod, c, "runAsUser")
    if uid is None:
        if not im.HasField("uid"):
            sys.exit("image has non-numeric user %r" % im.username)
        uid = im.uid.value
    if uid == 0:
        sys.exit("container has runAsNonRoot and would run as root")
    return "uid %d" % uid


def container_config(cri, pod, c, image_id, ns_opts, podname, uid):
    pb = cri.pb
    csc = pb.LinuxContainerSecurityContext(namespace_options=ns_opts)
    caps = c.get("securityContext", {}).get("capabilities", {})
    csc.capabilities.drop_capabilities.extend(caps.get("drop", []))
    csc.capabilities.add_capabilities.extend(caps.get("add", []))
    if sec(pod, c, "runAsUser") is not None:
        csc.run_as_user.value = sec(pod, c, "runAsUser")
    if sec(pod, c, "runAsGroup") is not None:
        csc.run_as_group.value = sec(pod, c, "runAsGroup")
    csc.readonly_rootfs = bool(sec(pod, c, "readOnlyRootFilesystem"))
    ape = c.get("securityContext", {}).get("allowPrivilegeEscalation")
    csc.no_new_privs = ape is False
    prof = (sec(pod, c, "seccompProfile") or {}).get("type")
    csc.seccomp.profile_type = pb.SecurityProfile.RuntimeDefault \
        if prof == "RuntimeDefault" else pb.SecurityProfile.Unconfined
    env = [pb.KeyValue(key=e["name"], value=str(e.get("value", "")))
           for e in c.get("env", [])]
    return pb.ContainerConfig(
        metadata=pb.ContainerMetadata(name=c["name"], attempt=0),
        image=pb.ImageSpec(image=image_id),
        command=c.get("command", []), args=c.get("args", []),
        working_dir=c.get("workingDir", ""), envs=env,
        labels={"io.kubernetes.container.name": c["name"],
                "io.kubernetes.pod.name": podname,
                "io.kubernetes.pod.namespace": NAMESPACE,
                "io.kubernetes.pod.uid": uid},
        log_path="%s/0.log" % c["name"],
        linux=pb.LinuxContainerConfig(
            resources=pb.LinuxContainerResources(**resources(c)),
            security_context=csc))


def run(cri, path, opts):
    """What the kubelet's SyncPod does for a new pod with one container."""
    meta, pod, name = pod_of(path)
    c = pod["containers"][0]
    scfg, ns_opts = sandbox_config(cri, meta, pod, name, opts)
    os.makedirs(os.path.join(scfg.log_directory, c["name"]), exist_ok=True)
    pod_id = cri.rt("RunPodSandbox", deadline=120, config=scfg).pod_sandbox_id
    say(pod=pod_id, pod_name=scfg.metadata.name)
    st = cri.rt("PodSandboxStatus", pod_sandbox_id=pod_id).status
    # A hostNetwork pod has the node's addresses (the test uses loopback).
    ip = st.network.ip or ("127.0.0.1" if pod.get("hostNetwork") else "-")
    say(pod_ip=ip, pod_state=cri.pb.PodSandboxState.Name(st.state))
    image = opts["image"] or c["image"]
    image_id, pulled = ensure_image(cri, image,
                                    c.get("imagePullPolicy"), scfg)
    im = cri.image_status(image_id)
    say(image=image, image_id=image_id, pulled="yes" if pulled else "no",
        image_uid=im.uid.value if im.HasField("uid") else "-",
        image_digests=",".join(im.repo_digests) or "-",
        non_root=verify_non_root(pod, c, im).replace(" ", "_"))
    ccfg = container_config(cri, pod, c, image_id, ns_opts,
                            scfg.metadata.name, scfg.metadata.uid)
    cid = cri.rt("CreateContainer", pod_sandbox_id=pod_id, config=ccfg,
                 sandbox_config=scfg).container_id
    cri.rt("StartContainer", container_id=cid)
    status, pid = cri.container_pid(cid)
    say(container=cid, pid=pid,
        state=cri.pb.ContainerState.Name(status.state),
        log=os.path.join(scfg.log_directory, status.log_path or
                         ccfg.log_path))


def wait_exit(cri, cid, t0, limit):
    """Until the container has exited (at most LIMIT s after T0)."""
    while True:
        status = cri.rt("ContainerStatus", container_id=cid).status
        if status.state == cri.pb.CONTAINER_EXITED or \
                time.monotonic() - t0 > limit:
            return status
        time.sleep(0.02)


def stop(cri, pod_id, cid, grace):
    """The kubelet's killPod: StopContainer with the grace period (the
    runtime sends SIGTERM, then SIGKILL when it runs out), then
    StopPodSandbox for the sandbox and its network."""
    t0 = time.monotonic()
    cri.rt("StopContainer", deadline=grace + 30, container_id=cid,
           timeout=grace)
    status = wait_exit(cri, cid, t0, grace + 5)
    ms = (time.monotonic() - t0) * 1000
    say(state=cri.pb.ContainerState.Name(status.state),
        exit_code=status.exit_code, reason=status.reason or "-",
        stop_ms="%.0f" % ms)
    cri.rt("StopPodSandbox", pod_sandbox_id=pod_id)
    st = cri.rt("PodSandboxStatus", pod_sandbox_id=pod_id).status
    say(pod_state=cri.pb.PodSandboxState.Name(st.state))


def stop_sandbox(cri, pod_id, cid):
    """StopPodSandbox alone: how the runtime ends a running container."""
    t0 = time.monotonic()
    cri.rt("StopPodSandbox", deadline=60, pod_sandbox_id=pod_id)
    status = wait_exit(cri, cid, t0, 10)
    say(state=cri.pb.ContainerState.Name(status.state),
        exit_code=status.exit_code, reason=status.reason or "-",
        stop_ms="%.0f" % ((time.monotonic() - t0) * 1000))


def remove(cri, pod_id):
    cri.rt("RemovePodSandbox", pod_sandbox_id=pod_id)
    try:
        cri.rt("PodSandboxStatus", pod_sandbox_id=pod_id)
        say(removed="no")
    except cri.grpc.RpcError as e:
        say(removed="yes" if e.code() == cri.grpc.StatusCode.NOT_FOUND
            else "error %s" % e.code())


def clean(cri):
    """Stop and remove every pod sandbox the runtime has (after a failure:
    this also lets CNI take the pods off the network)."""
    n = 0
    for p in cri.rt("ListPodSandbox").items:
        for method in ("StopPodSandbox", "RemovePodSandbox"):
            try:
                cri.rt(method, deadline=60, pod_sandbox_id=p.id)
            except cri.grpc.RpcError as e:
                print("# %s %s: %s" % (method, p.id, e.details()),
                      file=sys.stderr)
        n += 1
    say(removed=n)


def wait_ready(cri, seconds):
    deadline = time.monotonic() + seconds
    while True:
        try:
            conds = {c.type: c for c in
                     cri.rt("Status", deadline=5).status.conditions}
            if all(conds.get(t) and conds[t].status
                   for t in ("RuntimeReady", "NetworkReady")):
                say(ready="yes")
                return
        except cri.grpc.RpcError as e:
            conds = {"rpc": e}
        if time.monotonic() > deadline:
            sys.exit("runtime not ready: %s" % conds)
        time.sleep(0.1)


def run_opts(args):
    opts = {"log_root": "/var/log/pods", "cgroup_root": "/kubepods",
            "suffix": uuid.uuid4().hex[:5], "host_ports": {}, "image": ""}
    it = iter(args)
    for a in it:
        if a == "--host-port":
            old, new = next(it).split("=")
            opts["host_ports"][int(old)] = int(new)
        elif a in ("--log-root", "--cgroup-root", "--suffix", "--image"):
            opts[a[2:].replace("-", "_")] = next(it)
        else:
            sys.exit("unknown option %s" % a)
    return opts


def main(argv):
    if len(argv) >= 2 and argv[0] in ("facts", "probe"):
        return facts(argv[1]) if argv[0] == "facts" else \
            probe(argv[1], argv[2])
    if len(argv) < 3 or argv[0] != "-s":
        sys.exit(__doc__.strip().split("\n\n")[1])
    cri = Cri(argv[1])
    cmd, args = argv[2], argv[3:]
    try:
        if cmd == "version":
            v = cri.rt("Version", version="v1")
            say(runtime=v.runtime_name, version=v.runtime_version,
                api=v.runtime_api_version)
        elif cmd == "wait-ready":
            wait_ready(cri, float(args[0]) if args else 30)
        elif cmd == "image-status":
            im = cri.image_status(args[0])
            if not im.id:
                sys.exit(3)
            print_image(im)
        elif cmd == "pull":
            ref = cri.img("PullImage", deadline=180,
                          image=cri.pb.ImageSpec(image=args[0])).image_ref
            say(image_ref=ref)
            print_image(cri.image_status(args[0]))
        elif cmd == "run":
            run(cri, args[0], run_opts(args[1:]))
        elif cmd == "stop":
            stop(cri, args[0], args[1], int(args[2]))
        elif cmd == "stop-sandbox":
            stop_sandbox(cri, args[0], args[1])
        elif cmd == "remove":
            remove(cri, args[0])
        elif cmd == "clean":
            clean(cri)
        else:
            sys.exit("unknown command %s" % cmd)
    except cri.grpc.RpcError as e:
        sys.exit("%s: %s: %s" % (cmd, e.code().name, e.details()))


if __name__ == "__main__":
    main(sys.argv[1:])
