"""Shares of a perf profile of the server by layer (kernel, allocator, pingora, header maps,
the gateway's own code, ...): python3 scripts/profile-shares.py perf.data"""
import sys,re,subprocess,collections
f=sys.argv[1]
out=subprocess.run(['perf','report','-i',f,'--no-children','--sort','symbol','--stdio','-g','none'],capture_output=True,text=True).stdout
cats=collections.OrderedDict([('kernel (loopback TCP, syscalls, scheduling)',r'^\[k\]'),('allocator (mimalloc)',r'\b_?mi_'),('memcpy/memmove',r'mem(move|cpy|set)'),
 ('portcullis hooks and edge',r'portcullis::'),('SHA-256 (cache key)',r'sha2::'),('constant-time compare (subtle)',r'subtle::|constant_time'),('moka cache',r'moka::|crossbeam|quanta'),
 ('http/httparse header maps and parsing',r'\bhttp::|httparse::|pingora_http::'),('pingora HTTP/1 proxy path',r'pingora'),('tokio runtime and timers',r'tokio::'),('bytes',r'\bbytes::'),('SipHash (cache key)',r'sip::')])
tot=collections.Counter(); total=0
for line in out.splitlines():
    m=re.match(r'\s+([\d.]+)%\s+(\[[k.]\])\s+(.*)',line)
    if not m: continue
    p=float(m.group(1)); sym=m.group(2)+' '+m.group(3); total+=p
    for c,rx in cats.items():
        if re.search(rx,sym): tot[c]+=p; break
    else: tot['other (std, ...)']+=p
for c in list(cats)+['other (std, ...)']:
    print(f"{c}: {tot[c]:.1f}%")
