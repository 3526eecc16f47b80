// The page's stylesheet and script, served from /assets/ (no CDN, no build step, no dependency).
// The script is progressive: every page works without it (forms post and answer HTML); with it,
// counts and charts update live (pushed over /api/events, server-sent events, when the page has
// `data-events`; else, or when that stream fails, polled from /api/live), and actions run in
// place with an inline confirmation. Each update received over the stream counts up
// `data-sse` on the body (and `data-sse-events` the broker events it carried).

/** The stylesheet. */
export const CSS = `
:root{--bg:#fff;--fg:#1b1f24;--dim:#667085;--line:#e3e6ea;--card:#f6f7f9;--accent:#2458d3;--ok:#1a7f37;--warn:#b35900;--bad:#c62828;--s0:#2458d3;--s1:#1a7f37;--s2:#c62828;color-scheme:light dark}
@media (prefers-color-scheme:dark){:root{--bg:#14171c;--fg:#e6e8eb;--dim:#98a2b3;--line:#2b313a;--card:#1b2028;--accent:#6d9bff;--ok:#4cc26b;--warn:#e39b3c;--bad:#ff6b6b;--s0:#6d9bff;--s1:#4cc26b;--s2:#ff6b6b}}
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:var(--bg);color:var(--fg)}
a{color:var(--accent);text-decoration:none}a:hover{text-decoration:underline}
header{display:flex;flex-wrap:wrap;gap:.25rem 1rem;align-items:center;padding:.5rem 1rem;border-bottom:1px solid var(--line);background:var(--card)}
header b{font-size:1.05rem}header nav{display:flex;flex-wrap:wrap;gap:.1rem .8rem}header nav a.on{font-weight:600;color:var(--fg)}
header form{margin:0 0 0 auto;display:flex;gap:.3rem}header input[type=search]{width:14rem;max-width:50vw}
main{padding:.75rem 1rem 4rem;max-width:1400px}h1{font-size:1.25rem;margin:.3rem 0 .6rem}h2{font-size:1.05rem;margin:1.2rem 0 .4rem}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch}table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
th,td{padding:.35rem .5rem;border-bottom:1px solid var(--line);text-align:left;vertical-align:top;white-space:nowrap}
td.wrap{white-space:normal;word-break:break-word;min-width:12rem}th{font-weight:600;color:var(--dim);font-size:.85rem}
td.n,th.n{text-align:right}.dim{color:var(--dim)}.err{color:var(--bad)}code,pre{font:12.5px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
pre{background:var(--card);border:1px solid var(--line);padding:.6rem;overflow:auto;max-height:28rem;white-space:pre-wrap;word-break:break-word}
.badge{display:inline-block;padding:0 .45rem;border-radius:1rem;font-size:.78rem;border:1px solid var(--line);background:var(--card)}
.st-ready{color:var(--accent)}.st-delayed{color:var(--warn)}.st-running{color:var(--ok)}.st-dead{color:var(--bad)}.st-done{color:var(--dim)}
.badge.bad{color:var(--bad);border-color:var(--bad)}.badge.warn{color:var(--warn);border-color:var(--warn)}
.tabs{display:flex;flex-wrap:wrap;gap:.3rem;margin:.4rem 0}.tabs a{padding:.25rem .6rem;border:1px solid var(--line);border-radius:.4rem}.tabs a.on{background:var(--card);font-weight:600}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(260px,1fr));gap:.8rem}.chart{margin:0;border:1px solid var(--line);border-radius:.4rem;padding:.5rem;background:var(--card)}
.chart svg{width:100%;height:90px;display:block}.chart path{fill:none;stroke-width:1.6;vector-effect:non-scaling-stroke}
.s0{stroke:var(--s0);color:var(--s0)}.s1{stroke:var(--s1);color:var(--s1)}.s2{stroke:var(--s2);color:var(--s2)}
.legend{display:flex;flex-wrap:wrap;gap:.2rem .8rem;margin:.2rem 0 0;padding:0;list-style:none;font-size:.82rem}.legend b{color:var(--fg);font-weight:600}
form.filters{display:flex;flex-wrap:wrap;gap:.4rem;align-items:end;margin:.4rem 0 .6rem}form.filters label{display:flex;flex-direction:column;font-size:.8rem;color:var(--dim)}
input,select,button{font:inherit;padding:.3rem .45rem;border:1px solid var(--line);border-radius:.35rem;background:var(--bg);color:var(--fg)}
button{cursor:pointer;background:var(--card)}button.primary{background:var(--accent);border-color:var(--accent);color:#fff}button.danger{color:var(--bad);border-color:var(--bad)}
.bar{display:flex;flex-wrap:wrap;gap:.4rem;align-items:center;margin:.6rem 0;padding:.5rem;border:1px solid var(--line);border-radius:.4rem;background:var(--card)}
.pager{display:flex;gap:.8rem;align-items:center;margin:.6rem 0}dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem;margin:.4rem 0}dt{color:var(--dim)}dd{margin:0;word-break:break-word}
.note{padding:.5rem .7rem;border-left:3px solid var(--warn);background:var(--card);margin:.6rem 0}.unsupported{padding:.5rem .7rem;border-left:3px solid var(--dim);background:var(--card);color:var(--dim)}
progress{width:12rem}#notice{position:fixed;left:50%;transform:translateX(-50%);bottom:1rem;max-width:92vw;padding:.5rem .9rem;border-radius:.4rem;background:var(--fg);color:var(--bg);z-index:9}
#confirm{position:fixed;left:0;right:0;bottom:0;padding:.8rem 1rem;background:var(--card);border-top:2px solid var(--accent);display:flex;flex-wrap:wrap;gap:.6rem;align-items:center;z-index:8}
[hidden]{display:none!important}.login{max-width:22rem;margin:3rem auto}.login input{width:100%;margin:.4rem 0}
@media (max-width:640px){header form{margin:0;width:100%}header input[type=search]{width:100%;max-width:none;flex:1}main{padding:.5rem .6rem 5rem}th,td{padding:.3rem .35rem}.hide-s{display:none}}
`;

/** The script. */
export const JS = `"use strict";(()=>{
const d=document,B=d.body,$=(s,e=d)=>e.querySelector(s),$$=(s,e=d)=>[...e.querySelectorAll(s)];
const N=n=>Math.round(n).toString().replace(/\\B(?=(\\d{3})+(?!\\d))/g,",");
function dur(ms){if(ms<1e3)return Math.round(ms)+" ms";let s=Math.floor(ms/1e3);if(s<60)return s+" s";let m=Math.floor(s/60);if(m<60)return m+" m "+s%60+" s";let h=Math.floor(m/60);if(h<24)return h+" h "+m%60+" m";return Math.floor(h/24)+" d "+h%24+" h"}
const ms=v=>v<1e3?v.toFixed(1)+" ms":v<6e4?(v/1e3).toFixed(2)+" s":dur(v);let skew=0;function ages(){const now=Date.now()+skew;for(const t of $$("time[datetime]")){const v=Date.parse(t.getAttribute("datetime"));if(!isNaN(v)){const x=now-v;t.textContent=x>=0?dur(x)+" ago":"in "+dur(-x)}}}
let pts=[];const MAXP=300;
function readPoints(){const j=$("#points");if(j){try{pts=JSON.parse(j.textContent)}catch{pts=[]}}}
const CH={rates:[p=>p.enqueued,p=>p.processed,p=>p.failed],wait:[p=>p.wait[0],p=>p.wait[1],p=>p.wait[2]],run:[p=>p.run[0],p=>p.run[1],p=>p.run[2]]};
function draw(){for(const box of $$("[data-chart]")){const fs=CH[box.dataset.chart],svg=$("svg",box);if(!fs||!svg)continue;
let max=0;for(const p of pts)for(const f of fs){const v=f(p);if(v!=null&&v>max)max=v}
const W=300,H=90,n=pts.length;let html="";fs.forEach((f,k)=>{let dd="",pen=0;pts.forEach((p,i)=>{const v=f(p);if(v==null){pen=0;return}
const x=n<2?W:(i/(n-1))*W,y=H-2-(max?v/max:0)*(H-4);dd+=(pen?"L":"M")+x.toFixed(1)+" "+y.toFixed(1);pen=1});if(dd)html+='<path class="s'+k+'" d="'+dd+'"/>'});
svg.innerHTML=html;const last=pts[n-1];$$("[data-last]",box).forEach((b,k)=>{const v=last?fs[k](last):null;b.textContent=v==null?"-":(box.dataset.chart==="rates"?v.toFixed(1):ms(v))});
const m=$("[data-max]",box);if(m)m.textContent=box.dataset.chart==="rates"?max.toFixed(1)+"/s":ms(max)}}
function setq(q){for(const [k,v] of Object.entries(q)){for(const e of $$('[data-q="'+CSS.escape(q.queueName)+'"][data-k="'+k+'"]'))e.textContent=typeof v==="number"?N(v):String(v)}}
const lastT=()=>pts.length?pts[pts.length-1].t:0,qs=()=>"?since="+lastT()+(B.dataset.id?"&id="+encodeURIComponent(B.dataset.id):"");
async function apply(j){skew=j.t-Date.now();for(const q of j.queues||[])setq(q);if(j.totals)setq(j.totals);
const np=(j.points||[]).filter(p=>p.t>lastT());if(np.length){pts=pts.concat(np).slice(-MAXP);draw()}
const st=$("[data-state]");if(B.dataset.id&&st&&j.message&&j.message.state!==st.dataset.state)await refresh();ages()}
let busy=false,es=null;async function tick(f){if(busy||(es&&f!==1)||d.hidden||!B.dataset.live)return;busy=true;try{
const r=await fetch(B.dataset.live+qs(),{headers:{accept:"application/json"}});
if(r.status===401){location.reload();return}if(!r.ok)return;await apply(await r.json())}catch{}finally{busy=false}}
function sse(){if(es||!B.dataset.events||!window.EventSource)return;es=new EventSource(B.dataset.events+qs());
es.addEventListener("live",e=>{B.dataset.sse=String(+(B.dataset.sse||0)+1);apply(JSON.parse(e.data)).catch(()=>{})});
es.addEventListener("events",e=>{B.dataset.sseEvents=String(+(B.dataset.sseEvents||0)+JSON.parse(e.data).length)});
es.onerror=()=>{if(!es)return;es.close();es=null;tick();setTimeout(sse,15e3)}}
async function refresh(){const r=await fetch(location.href,{headers:{accept:"text/html"}});if(!r.ok)return;
const doc=new DOMParser().parseFromString(await r.text(),"text/html"),m=$("main",doc);if(m){$("main").replaceWith(m);readPoints();draw();ages()}}
let note;function notice(t,bad){const n=$("#notice");n.textContent=t;n.hidden=false;n.style.background=bad?"var(--bad)":"";clearTimeout(note);note=setTimeout(()=>n.hidden=true,6e3)}
async function post(form,fd){const r=await fetch(form.getAttribute("action"),{method:"POST",body:new URLSearchParams(fd),headers:{accept:"application/json"}});
let j;try{j=await r.json()}catch{j={error:"HTTP "+r.status}}
if(!r.ok||j.error){notice(j.error||("HTTP "+r.status),true);return}
if(j.step==="confirm"){const c=$("#confirm");$("span",c).textContent=j.text;c.hidden=false;$("button.primary",c).focus();
c.onclick=async e=>{const b=e.target.closest("button");if(!b)return;c.hidden=true;if(b.value!=="yes")return;fd.set("confirm","1");fd.set("asOf",String(j.asOf));fd.set("expected",String(j.count));await post(form,fd)};return}
notice(j.text);await refresh();await tick(1)}
d.addEventListener("submit",e=>{const f=e.target;if(!f.matches("form[data-js]"))return;e.preventDefault();const fd=new FormData(f);if(e.submitter&&e.submitter.name)fd.set(e.submitter.name,e.submitter.value);post(f,fd)});
d.addEventListener("change",e=>{const t=e.target;if(t.matches("input[data-all]"))for(const c of $$('input[name="ids"]'))c.checked=t.checked});
readPoints();draw();ages();setInterval(tick,Number(B.dataset.refresh||2e3));d.addEventListener("visibilitychange",tick);sse();if(B.dataset.live&&!es)tick()})();
`;
