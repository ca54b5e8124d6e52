// `gpt-oss-webgpu selftest`: checks the device-specific kernels on this adapter before anything is
// measured (gpu-check's first step). Where the adapter offers chromium-experimental-subgroup-matrix
// the REAL subgroup-matrix GEMMs run against the f32 kernels and float64 references, and any
// disagreement, build error or missing prerequisite fails the command: an adapter that advertises
// the feature is never skipped silently. Elsewhere the emulated twins run instead and the output
// says that the real kernels were not exercised. Also: the dispatch-gap probe (timestamps).
import { parseArgs } from 'node:util';
import { measureDispatchGap, type DispatchGap } from '../bench/dispatch-gap.js';
import { acquireGpu, SUBGROUP_MATRIX_FEATURE } from '../gpu/device.js';
import { sgmatSelfCheck, SELFTEST_CASES, type SgmatCheck } from '../engine/sgmat-check.js';

export const SELFTEST_USAGE = `Usage: gpt-oss-webgpu selftest [--json] [--no-dispatch-gap]

  Runs the subgroup-matrix (tensor core) GEMMs against the f32 kernels and float64 references:
  the real kernels where the adapter has ${SUBGROUP_MATRIX_FEATURE} (exit 1 when
  they disagree or cannot run), else their emulated twins (exit 0 when those pass, with a note
  that the real kernels were not exercised). Then times 1,000 dependent tiny dispatches.
  --json              one JSON object
  --no-dispatch-gap   skip the dispatch-gap probe
`;

export interface SelftestReport {
  adapter: string;
  advertised: boolean;
  subgroup_matrix_configs: unknown[];
  subgroup_size: [number, number];
  subgroup_matrix: { used: boolean; reason: string; exercised: SgmatCheck['exercised'] };
  cases: SgmatCheck['cases'];
  dispatch_gap: DispatchGap | null;
  ok: boolean;
}

export async function selftestCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { json: { type: 'boolean' }, 'no-dispatch-gap': { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help) {
    process.stdout.write(SELFTEST_USAGE);
    return 0;
  }
  const gpu = await acquireGpu({ robust: true });
  const advertised = gpu.adapter.features.has(SUBGROUP_MATRIX_FEATURE);
  const check = advertised ? await sgmatSelfCheck(gpu, { cases: SELFTEST_CASES }) : await sgmatSelfCheck(gpu, { emulate: true, cases: SELFTEST_CASES });
  // on an adapter with the feature only the real kernels passing counts
  const ok = advertised ? check.exercised === 'real' && check.used : check.cases.length > 0 && check.cases.every((c) => c.ok);
  const gap = values['no-dispatch-gap'] ? null : await measureDispatchGap(gpu).catch((e: Error) => {
    console.error(`dispatch gap: ${e.message}`);
    return null;
  });
  const report: SelftestReport = {
    adapter: [gpu.info.vendor, gpu.info.architecture, gpu.info.device, gpu.info.description].filter(Boolean).join(' / '),
    advertised,
    subgroup_matrix_configs: gpu.subgroupMatrixConfigs,
    subgroup_size: [gpu.subgroupMinSize, gpu.subgroupMaxSize],
    subgroup_matrix: { used: check.used, reason: check.reason, exercised: check.exercised },
    // a failing decode lists every mismatching value: its count (in ref.bits) says enough
    cases: check.cases.map((c) => ('mismatches' in c ? { ...c, mismatches: (c.mismatches as number[]).slice(0, 16) } : c)),
    dispatch_gap: gap,
    ok,
  };
  if (values.json) {
    process.stdout.write(JSON.stringify(report) + '\n');
  } else {
    const out: string[] = [`adapter: ${report.adapter}`];
    out.push(advertised ? `${SUBGROUP_MATRIX_FEATURE}: advertised; configs ${JSON.stringify(gpu.subgroupMatrixConfigs)}` : `${SUBGROUP_MATRIX_FEATURE}: not offered by this adapter: the REAL subgroup-matrix kernels were NOT exercised; running their emulated twins`);
    for (const c of check.cases) {
      const ratios = Object.entries(c.ref).map(([k, v]) => `${k} ${Number(v).toFixed(3)}`).join(', ');
      out.push(`  ${c.ok ? 'ok  ' : 'FAIL'} ${check.exercised} ${c.name}: vs float64 ${ratios}; vs f32 ${c.f32.toFixed(3)}${c.problems.length ? ` -- ${c.problems.join('; ')}` : ''}`);
    }
    out.push(`subgroup_matrix: ${check.used ? 'used' : 'not used'}: ${check.reason}`);
    out.push(gap ? `dispatch gap: ${gap.usPerDispatch.toFixed(2)} us per dependent dispatch (${gap.dispatches} between two timestamps${gap.counted ? '' : '; COUNT MISMATCH'})` : 'dispatch gap: not measured (no timestamp-query or skipped)');
    out.push(ok ? 'selftest: PASS' : 'selftest: FAIL');
    process.stdout.write(out.join('\n') + '\n');
  }
  return ok ? 0 : 1;
}
