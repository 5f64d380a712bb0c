"""Per-symbol CPU per request of two perf profiles made by scripts/profile-vs-pingora.sh (the
minimal pingora proxy and the open route), largest differences first: python3 scripts/profile-diff.py"""
import subprocess,re,sys,collections
def prof(f, cpu):
    out=subprocess.run(['perf','report','-i',f,'--no-children','--sort','dso,symbol','--stdio','-g','none'],capture_output=True,text=True).stdout
    d=collections.Counter()
    for line in out.splitlines():
        m=re.match(r'\s+([\d.]+)%\s+(\S+)\s+\[([k.])\]\s+(.*)',line)
        if not m: continue
        sym=re.split(r'\s{2,}',m.group(4).strip())[0]
        sym=re.sub(r'::h[0-9a-f]{16}$','',sym)
        if m.group(3)=='k': sym='[k] '+sym
        d[sym]+=float(m.group(1))*cpu/100
    return d
cpu=dict(l.split()[0:3:2] for l in open('/tmp/pcmp/cpu.txt'))
a=prof('/tmp/pcmp/perf-pingora.data',float(cpu['pingora']))
b=prof('/tmp/pcmp/perf-open.data',float(cpu['open']))
keys=set(a)|set(b)
diff=sorted(keys,key=lambda k:-(b[k]-a[k]))
print("total", sum(a.values()), sum(b.values()))
for k in diff[:45]:
    print(f"{b[k]-a[k]:+7.2f}  {a[k]:6.2f} {b[k]:6.2f}  {k[:150]}")
