// Groups a step's (token, slot) assignments by expert, for the grouped MoE GEMMs. One workgroup.
// In: routing u32 [T][k][2] (expert id, weight bits). Out (groups, u32):
//   offsets[E + 1]   first sorted row of each expert (exclusive prefix of the counts)
//   tile_off[E + 1]  first tile of each expert; expert e has ceil(count_e / BM) tiles of BM rows
//   tiles[2 * n]     per tile: (expert, first sorted row)
// and order[row] = assignment (t * k + s) of each sorted row, dst[assignment] = its sorted row.
// Rows of an expert keep the assignments' order (deterministic: a thread per expert scans them).
// defines: WG, BM.
#include lib/step

struct Params {
  k: u32,
  e: u32,           // experts
  tiles_off: u32,   // word offset of `tiles` in groups (after offsets and tile_off)
}

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<uniform> p: Params;
@group(0) @binding(2) var<storage, read> routing: array<u32>;
@group(0) @binding(3) var<storage, read_write> groups: array<u32>;
@group(0) @binding(4) var<storage, read_write> order: array<u32>;
@group(0) @binding(5) var<storage, read_write> dst: array<u32>;

var<workgroup> counts: array<u32, 1024>;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32) {
  let n = step.tokens * p.k;
  for (var e = lid; e < p.e; e += WG) {
    var c = 0u;
    for (var a = 0u; a < n; a++) {
      c += select(0u, 1u, min(routing[2u * a], p.e - 1u) == e);
    }
    counts[e] = c;
  }
  workgroupBarrier();
  if (lid == 0u) {
    var row = 0u;
    var tile = 0u;
    for (var e = 0u; e < p.e; e++) {
      groups[e] = row;
      groups[p.e + 1u + e] = tile;
      row += counts[e];
      tile += (counts[e] + BM - 1u) / BM;
    }
    groups[p.e] = row;
    groups[2u * p.e + 1u] = tile;
  }
  workgroupBarrier();
  for (var e = lid; e < p.e; e += WG) {
    var row = groups[e];
    for (var a = 0u; a < n; a++) {
      if (min(routing[2u * a], p.e - 1u) == e) {
        order[row] = a;
        dst[a] = row;
        row++;
      }
    }
    let t0 = groups[p.e + 1u + e];
    let nt = (counts[e] + BM - 1u) / BM;
    for (var j = 0u; j < nt; j++) {
      groups[p.tiles_off + 2u * (t0 + j)] = e;
      groups[p.tiles_off + 2u * (t0 + j) + 1u] = groups[e] + j * BM;
    }
  }
}
