// Workgroup-wide exclusive prefix sum of one vec3<u32> per invocation (three counts scanned at
// once), plus the workgroup total. Needs const WG (a power of two) and SG_MIN. With SUBGROUPS,
// subgroupExclusiveAdd inside each subgroup, then each thread adds the totals of the subgroups
// before its own (at most WG / SG_MIN of them, from workgroup memory). Like lib/reduce, subgroup i
// is taken to hold invocations [i*sg_size, (i+1)*sg_size) (the engine's start-up layout check);
// the caller sets scan_sg_size under #if SUBGROUPS. Without subgroups, a Hillis-Steele scan in
// workgroup memory (2 log2(WG) barriers). Call from uniform control flow.
#if SUBGROUPS
var<private> scan_sg_size: u32 = 1u;
var<workgroup> scan_part: array<vec3<u32>, (WG + SG_MIN - 1u) / SG_MIN>;
#else
var<workgroup> scan_buf: array<vec3<u32>, WG>;
#endif

struct ScanResult {
  excl: vec3<u32>,   // sum over invocations with a lower index
  total: vec3<u32>,  // sum over the workgroup
}

fn wg_exclusive_scan(v: vec3<u32>, lid: u32) -> ScanResult {
#if SUBGROUPS
  let x = subgroupExclusiveAdd(v);
  let all = subgroupAdd(v);
  let sg = lid / scan_sg_size;
  let nsg = (WG + scan_sg_size - 1u) / scan_sg_size;
  if (lid % scan_sg_size == 0u) {
    scan_part[sg] = all;
  }
  workgroupBarrier();
  var before = vec3<u32>(0u);
  var total = vec3<u32>(0u);
  for (var i = 0u; i < nsg; i++) {
    let s = scan_part[i];
    before += select(vec3<u32>(0u), s, i < sg);
    total += s;
  }
  workgroupBarrier();
  return ScanResult(before + x, total);
#else
  scan_buf[lid] = v;
  workgroupBarrier();
  for (var off = 1u; off < WG; off <<= 1u) {
    var t = vec3<u32>(0u);
    if (lid >= off) {
      t = scan_buf[lid - off];
    }
    workgroupBarrier();
    scan_buf[lid] += t;
    workgroupBarrier();
  }
  let incl = scan_buf[lid];
  let total = scan_buf[WG - 1u];
  workgroupBarrier();
  return ScanResult(incl - v, total);
#endif
}
