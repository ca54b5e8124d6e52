// Groups a small step's (token, slot) assignments by expert in parallel (steps of 2 to ~128
// tokens; moe_route's thread-per-expert scans are serial in the step's assignments). One
// workgroup:
//   1. every assignment sets its bit in a per-expert bitmask over assignment indices (atomicOr);
//   2. each expert's count is the popcount of its mask row (threads own EPT consecutive experts);
//   3. one workgroup scan (lib/exclusive_scan) of (rows, tiles, used) gives every expert's first
//      sorted row, first tile and its index in the list of used experts;
//   4. each assignment's rank within its expert is the popcount of the mask bits before it, so
//      rows keep the assignments' order (the same grouping as moe_route, deterministic).
// Output, u32 in `groups` (moe_route's layout, plus the used-expert list for the grouped matvecs):
//   [0, E]                    offsets: first sorted row of each expert; offsets[E] = rows
//   [E+1, 2E+1]               tile_off: first tile of each expert (tiles of BM rows, for moe_gemm)
//   tiles_off + [0, 2·tiles)  per tile: (expert, first sorted row)
//   used_off + [0, E]         uoff: used experts (count > 0) before each expert; uoff[E] = used
//   used_off + E + 1 + u      the u-th used expert, ascending
// and order[row] = assignment (t·k + s) of each sorted row, dst[assignment] = its sorted row.
// defines: WG (power of two), E (experts), EPT (= ceil(E / WG)), MASKW (mask words per expert:
// ceil(most assignments / 32)), BM.
#include lib/step
#include lib/exclusive_scan

struct Params {
  k: u32,
  tiles_off: u32,
  used_off: u32,
}

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<uniform> p: Params;
@group(0) @binding(2) var<storage, read> routing: array<u32>;
@group(0) @binding(3) var<storage, read_write> groups: array<u32>;
@group(0) @binding(4) var<storage, read_write> order: array<u32>;
@group(0) @binding(5) var<storage, read_write> dst: array<u32>;

var<workgroup> mask: array<atomic<u32>, E * MASKW>;
var<workgroup> first_row: array<u32, E>;

@compute @workgroup_size(WG)
fn main(
  @builtin(local_invocation_index) lid: u32,
#if SUBGROUPS
  @builtin(subgroup_size) sgs: u32,
#endif
) {
#if SUBGROUPS
  scan_sg_size = sgs;
#endif
  // the host never plans more assignments than the mask holds; a larger step is cut, not overrun
  let n = min(step.tokens * p.k, MASKW * 32u);
  let words = (n + 31u) / 32u;
  for (var i = lid; i < E * MASKW; i += WG) {
    atomicStore(&mask[i], 0u);
  }
  workgroupBarrier();
  for (var a = lid; a < n; a += WG) {
    let e = min(routing[2u * a], E - 1u);
    atomicOr(&mask[e * MASKW + a / 32u], 1u << (a % 32u));
  }
  workgroupBarrier();

  var cnt: array<u32, EPT>;
  var mine = vec3<u32>(0u);
  for (var j = 0u; j < EPT; j++) {
    let e = lid * EPT + j;
    var c = 0u;
    if (e < E) {
      for (var w = 0u; w < words; w++) {
        c += countOneBits(atomicLoad(&mask[e * MASKW + w]));
      }
    }
    cnt[j] = c;
    mine += vec3<u32>(c, (c + BM - 1u) / BM, select(0u, 1u, c > 0u));
  }
  let scan = wg_exclusive_scan(mine, lid);
  var run = scan.excl;
  for (var j = 0u; j < EPT; j++) {
    let e = lid * EPT + j;
    if (e < E) {
      let c = cnt[j];
      groups[e] = run.x;
      groups[E + 1u + e] = run.y;
      groups[p.used_off + e] = run.z;
      first_row[e] = run.x;
      if (c > 0u) {
        groups[p.used_off + E + 1u + run.z] = e;
      }
      for (var t = 0u; t < (c + BM - 1u) / BM; t++) {
        groups[p.tiles_off + 2u * (run.y + t)] = e;
        groups[p.tiles_off + 2u * (run.y + t) + 1u] = run.x + t * BM;
      }
      run += vec3<u32>(c, (c + BM - 1u) / BM, select(0u, 1u, c > 0u));
    }
  }
  if (lid == 0u) {
    groups[E] = scan.total.x;
    groups[2u * E + 1u] = scan.total.y;
    groups[p.used_off + E] = scan.total.z;
  }
  workgroupBarrier();

  for (var a = lid; a < n; a += WG) {
    let e = min(routing[2u * a], E - 1u);
    let wi = a / 32u;
    var r = countOneBits(atomicLoad(&mask[e * MASKW + wi]) & ((1u << (a % 32u)) - 1u));
    for (var w = 0u; w < wi; w++) {
      r += countOneBits(atomicLoad(&mask[e * MASKW + w]));
    }
    let row = first_row[e] + r;
    order[row] = a;
    dst[a] = row;
  }
}
