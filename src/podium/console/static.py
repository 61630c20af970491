"""The console's stylesheet and its one small script, inlined into every page: no front-end
library, no build step, nothing fetched from a CDN (GPU boxes are often offline)."""

from __future__ import annotations

STYLE = """
*{box-sizing:border-box}
body{font:15px/1.5 system-ui,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
header{background:#1d2330;color:#fff;padding:10px 20px;display:flex;gap:18px;align-items:center;
 flex-wrap:wrap}
header nav{display:flex;gap:4px 16px;flex-wrap:wrap}
header a{color:#dfe5f0;text-decoration:none;padding:2px 0} header a:hover{text-decoration:underline}
.brand{font-size:17px;margin-right:8px}
main{padding:16px 20px 40px;max-width:1200px;margin:0 auto}
h1{font-size:22px;margin:8px 0 12px} h2{font-size:18px;margin:24px 0 8px}
a:focus,button:focus,input:focus,select:focus,textarea:focus,summary:focus{outline:3px solid #3b7ddd;
 outline-offset:2px}
.skip{position:absolute;left:-999px} .skip:focus{left:8px;top:8px;background:#fff;padding:6px;z-index:9}
.table-wrap{overflow-x:auto;margin:8px 0 20px}
table{border-collapse:collapse;width:100%;background:#fff}
th,td{text-align:left;padding:7px 10px;border-bottom:1px solid #e3e6eb;vertical-align:top}
th{font-weight:600;background:#eef0f4} code,pre{font-size:13px}
pre{background:#fff;border:1px solid #e3e6eb;padding:10px;overflow:auto;max-height:480px;white-space:pre-wrap;
 word-break:break-all}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;border:1px solid currentColor;font-size:13px;
 white-space:nowrap}
.s-serving,.s-ready{color:#137333}.s-failed{color:#b3261e}.s-stopped,.s-idle{color:#555}
.s-provisioning,.s-scaling,.s-starting,.s-draining,.s-pending{color:#8a5a00}
.err{color:#b3261e;font-weight:600} .ok{color:#137333;font-weight:600} .muted{color:#5b6472}
.card{background:#fff;border:1px solid #e3e6eb;border-radius:6px;padding:14px 16px;margin:10px 0}
.narrow{max-width:560px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(260px,1fr));gap:0 20px}
fieldset{border:1px solid #e3e6eb;border-radius:6px;margin:10px 0;padding:4px 14px 12px}
legend{font-weight:600;padding:0 6px}
form.inline{display:inline}
label{display:block;font-weight:600;margin:10px 0 3px}
input,select,textarea{font:inherit;padding:6px 8px;border:1px solid #aeb5c2;border-radius:4px;width:100%;
 max-width:560px;background:#fff}
input[type=checkbox]{width:auto} select.wide{max-width:none} .check label{display:inline;font-weight:400}
.row{display:flex;gap:12px;flex-wrap:wrap} .row>div{flex:1 1 140px;min-width:0}
button,.button{font:inherit;padding:6px 14px;border-radius:4px;border:1px solid #1d2330;background:#1d2330;
 color:#fff;cursor:pointer;margin:8px 6px 0 0;text-decoration:none;display:inline-block}
button.secondary,.button.secondary{background:#fff;color:#1d2330}
button.danger{background:#b3261e;border-color:#b3261e}
.tabs{display:flex;gap:6px;flex-wrap:wrap;margin:12px 0;border-bottom:1px solid #cfd5df}
.tabs a{padding:6px 12px;text-decoration:none;color:#1d2330;border:1px solid transparent;border-bottom:none}
.tabs a[aria-current=page]{background:#fff;border-color:#cfd5df;border-radius:4px 4px 0 0;font-weight:600}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(280px,1fr));gap:12px}
.chart{margin:0;background:#fff;border:1px solid #e3e6eb;border-radius:6px;padding:8px 10px}
.chart h3{font-size:14px;margin:0} .chart svg{width:100%;height:80px;display:block}
.chat{background:#fff;border:1px solid #e3e6eb;border-radius:6px;padding:10px;min-height:80px;
 max-height:360px;overflow:auto}
.msg{margin:6px 0;white-space:pre-wrap} .msg b{display:block;font-size:12px;color:#5b6472}
.secret-shown{font-size:15px;background:#fff8e1;border:1px solid #e0b400;padding:8px;word-break:break-all}
@media (max-width:600px){main{padding:12px}header{padding:8px 12px;gap:8px}th,td{padding:6px}
 .hide-narrow{display:none}}
"""

SCRIPT = """
(function(){
  function every(ms, fn){ fn(); setInterval(fn, ms); }
  document.querySelectorAll('[data-live]').forEach(function(el){
    every(2000, function(){
      fetch(el.dataset.live, {credentials:'same-origin'}).then(function(r){ return r.ok ? r.json() : null; })
        .then(function(parts){ if(!parts) return; Object.keys(parts).forEach(function(id){
          var t = document.getElementById(id); if(t && t.innerHTML !== parts[id]) t.innerHTML = parts[id]; });
  })
        .catch(function(){});
    });
  });
  document.querySelectorAll('[data-logs]').forEach(function(pre){
    var follow = document.getElementById('follow');
    every(2000, function(){
      if(follow && !follow.checked) return;
      fetch(pre.dataset.logs, {credentials:'same-origin'}).then(function(r){ return r.text();
  }).then(function(t){
        if(pre.textContent !== t){ pre.textContent = t; pre.scrollTop = pre.scrollHeight;
  } }).catch(function(){});
    });
  });
  document.querySelectorAll('button[data-copy]').forEach(function(b){
    b.addEventListener('click', function(){
      var text = document.getElementById(b.dataset.copy).textContent;
      (navigator.clipboard ? navigator.clipboard.writeText(text) : Promise.reject()).then(
        function(){ b.textContent = 'Copied'; }, function(){ b.textContent = 'Select and copy'; });
    });
  });
  var chat = document.getElementById('chat-form');
  if(chat){
    var log = document.getElementById('chat-log'), box = document.getElementById('chat-input'), history = [];
    function add(who, text){ var d = document.createElement('div'); d.className = 'msg';
      var b = document.createElement('b'); b.textContent = who; d.appendChild(b);
      d.appendChild(document.createTextNode(text)); log.appendChild(d); log.scrollTop = log.scrollHeight;
  return d; }
    chat.addEventListener('submit', function(ev){
      ev.preventDefault(); var text = box.value.trim(); if(!text) return;
      history.push({role:'user', content:text}); add('You', text); box.value = '';
      var pending = add('Model', '…'); pending.setAttribute('aria-busy', 'true');
      fetch(chat.action, {method:'POST', credentials:'same-origin', headers:{'content-type':'application/json'},
        body: JSON.stringify({messages: history})}).then(function(r){ return r.json(); }).then(function(j){
          pending.removeAttribute('aria-busy');
          if(j.reply !== undefined){ history.push({role:'assistant', content:j.reply});
            pending.lastChild.textContent = j.reply; pending.classList.add('reply'); }
          else { pending.lastChild.textContent = 'Error: ' + j.error; pending.classList.add('err'); }
        }).catch(function(e){ pending.lastChild.textContent = 'Error: ' + e; });
    });
  }
})();
"""
