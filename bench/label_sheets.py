import numpy as np, json
from PIL import Image, ImageDraw
from mediafm_core.media.shots import _block_means,_histograms,_mad
full=np.load('/tmp/i11/mv_full.npy'); small=np.load('/tmp/i11/mv_small.npy'); pt=np.load('/tmp/i11/mv_tnp.npy')
dets=json.load(open('/tmp/i11/mv_dets.json'))
b=_block_means(small,3); h=_histograms(small,4)
pix=_mad(b[1:],b[:-1]); hist=0.5*np.abs(h[1:]-h[:-1]).sum(1); score=0.5*(np.minimum(pix*4,1)+hist)
cands={}
def add(f,src):
    cands.setdefault(int(f),set()).add(src)
for k,v in dets.items():
    for f in v: add(f,k[:4] if not k.startswith('pyscene') else ('psa' if 'adap' in k else 'psc'))
for i in range(1,len(pt)-1):
    if pt[i]>0.05 and pt[i]>=pt[i-1] and pt[i]>=pt[i+1]: add(i+1,'tnlow')
for i in range(2,len(score)-2):
    if score[i]>0.1 and score[i]==score[i-2:i+3].max(): add(i+1,'sc')
# cluster
fs=sorted(cands); groups=[]
for f in fs:
    if groups and f-groups[-1][-1]<=3: groups[-1].append(f)
    else: groups.append([f])
print(len(fs), len(groups))
out=[]
for g in groups:
    srcs=set().union(*[cands[f] for f in g])
    # representative: frame with max score in group range
    lo,hi=g[0]-1,g[-1]
    rep=lo+int(np.argmax(score[lo-1:hi]))  # score index i means i->i+1 ; boundary i+1
    rep=int(np.argmax(score[g[0]-2:g[-1]+1]))+g[0]-2+1
    out.append(dict(frames=g,rep=rep,src=sorted(srcs)))
json.dump(out,open('/tmp/i11/mv_groups.json','w'))
# sheets: rows of 7 frames rep-3..rep+3
W,H=160,90; per=8
for s in range(0,len(out),per):
    rows=out[s:s+per]
    img=Image.new('RGB',(7*W+4*7, len(rows)*(H+14)),(40,40,40)); d=ImageDraw.Draw(img)
    for r,g in enumerate(rows):
        y=r*(H+14)
        d.text((2,y),f"#{s+r} rep={g['rep']} {g['frames']} {','.join(g['src'])} sc={score[g['rep']-1]:.2f} tn={pt[g['rep']-1]:.2f}",fill=(255,255,0))
        for k,f in enumerate(range(g['rep']-3,g['rep']+4)):
            if 0<=f<len(full):
                img.paste(Image.fromarray(full[f]),(k*(W+4),y+12))
                if f==g['rep']: d.rectangle([k*(W+4)-2,y+11,k*(W+4)+W+1,y+12+H],outline=(255,0,0))
    img.save(f'/tmp/i11/sheet_{s//per:02d}.png')
print('sheets',(len(out)+per-1)//per)
