"""Comparisons, targets, table, CSV/JSON and plot, from hand-made rows (no model runs)."""
import csv
import dataclasses
import json

import pytest

from lab.benchmark_targets import Target, evaluate_targets, failed, format_targets
from tl_models.benchmark import (
    add_comparisons,
    default_output_prefix,
    format_table,
    plot_throughput_vs_gmacs,
    write_csv,
    write_results_json,
)

CPU_TARGET_META = {
    'date': '2026-01-02T03:04:05+00:00', 'device_name': 'Some CPU, 2 threads', 'torch_threads': 2,
    'config': {'device': 'cpu', 'precision': 'fp32', 'batch_size': 8, 'model_args': {}, 'compile': 'both',
               'flops_only': False},
}


def row(model, gmacs, infer_ips, train_ips, baseline='', compiled=False, **extra):
    return dict(model=model, tokenlearner=bool(baseline), baseline=baseline, compiled=compiled, img_size=224,
                batch_size=8, params_m=86.6, gmacs=gmacs, infer_ips=infer_ips, train_ips=train_ips, **extra)


def sample_rows():
    return add_comparisons([
        row('vit_base_patch16_224', 17.56, 10.0, 3.0),
        row('tl_vit_base_patch16_224_8at6', 9.15, 18.0, 5.0, baseline='vit_base_patch16_224', tl_share_pct=0.5),
        row('tl_vit_base_patch16_224_8at6_fuse', 9.27, 16.0, 5.5, baseline='vit_base_patch16_224', tl_share_pct=4.0),
        row('vit_base_patch16_224', 17.56, 11.0, 2.9, compiled=True, graph_breaks=0),
        row('tl_vit_base_patch16_224_8at6', 9.15, 19.0, 5.2, baseline='vit_base_patch16_224', compiled=True,
            graph_breaks=1),
    ])


def test_comparisons_against_the_twin_and_eager():
    rows = sample_rows()
    tl = rows[1]
    assert tl['flop_bound'] == pytest.approx(17.56 / 9.15)
    assert tl['infer_speedup'] == pytest.approx(1.8)
    assert tl['infer_of_bound'] == pytest.approx(1.8 / (17.56 / 9.15))
    assert tl['train_of_bound'] == pytest.approx((5.0 / 3.0) / (17.56 / 9.15))
    compiled_tl = rows[4]
    assert compiled_tl['infer_speedup'] == pytest.approx(19.0 / 11.0)  # against the compiled twin
    assert compiled_tl['infer_vs_eager'] == pytest.approx(19.0 / 18.0)
    assert rows[3]['train_vs_eager'] == pytest.approx(2.9 / 3.0)
    assert 'flop_bound' not in rows[0] and 'infer_vs_eager' not in rows[0]


def test_targets_pass_fail_and_not_applicable():
    results = evaluate_targets(CPU_TARGET_META, sample_rows())
    by_key = {(r.model, r.description.split(',')[0], r.detail.split(' =')[0]): r.status for r in results}
    tl, fuse = 'tl_vit_base_patch16_224_8at6', 'tl_vit_base_patch16_224_8at6_fuse'
    assert by_key[(tl, 'TL-ViT-B/16 (8 tokens at block 6) inference throughput', 'infer_of_bound')] == 'fail'
    assert by_key[(tl, 'TL-ViT-B/16 (8 tokens at block 6) training throughput', 'train_of_bound')] == 'fail'
    assert by_key[(fuse, 'TokenFuser variant inference throughput', 'infer_of_bound')] == 'fail'  # 1.6 of 1.89
    assert by_key[(fuse, 'TokenFuser variant training throughput', 'train_of_bound')] == 'pass'  # 1.83 of 1.89
    shares = {r.model: r.status for r in results if 'percent of' in r.description}
    assert shares == {tl: 'pass', fuse: 'fail'}
    breaks = {r.model: r.status for r in results if 'graph breaks' in r.description}
    assert breaks == {tl: 'fail'}  # the compile targets judge our variants, not timm's twin
    flops = [r for r in results if 'paper' in r.description]
    assert {r.status for r in flops} == {'n/a'}  # no 384 px model in these rows
    assert len(failed(results)) == sum(r.status == 'fail' for r in results) > 0
    assert '[FAIL] tl_vit_base_patch16_224_8at6_fuse' in format_targets(results)


def test_throughput_targets_need_their_setting():
    meta = dict(CPU_TARGET_META, torch_threads=4)
    results = evaluate_targets(meta, sample_rows())
    throughput = [r for r in results if 'bound' in r.description]
    assert throughput and all(r.status == 'n/a' and 'torch_threads=4 (target: 2)' in r.detail for r in throughput)


def test_a_target_checks_its_limits():
    target = Target('within', 'm', 'gmacs', low=1.0, high=2.0)
    assert target.holds(1.0) and target.holds(2.0) and not target.holds(2.01) and not target.holds(0.99)
    assert target.requirement == 'in [1, 2]'
    rows = [row('m', 2.5, None, None)]
    assert [r.status for r in evaluate_targets(CPU_TARGET_META, rows, [target])] == ['fail']


def test_table_shows_measured_columns_only():
    table = format_table(sample_rows()).splitlines()
    assert table[0].split()[:3] == ['model', 'compiled', 'px']
    assert 'infer MiB' not in table[0]  # no row has it
    assert len(table) == 2 + 5
    assert table[4].split()[:2] == ['tl_vit_base_patch16_224_8at6_fuse', 'no']
    assert table[6].split()[:2] == ['tl_vit_base_patch16_224_8at6', 'yes']


def test_csv_and_json_hold_the_rows(tmp_path):
    rows = sample_rows()
    rows[0]['infer_round_s'] = [0.8, 0.9]
    write_csv(tmp_path / 'r.csv', rows)
    with open(tmp_path / 'r.csv', newline='') as f:
        read = list(csv.DictReader(f))
    assert [r['model'] for r in read] == [r['model'] for r in rows]
    assert float(read[1]['infer_of_bound']) == pytest.approx(rows[1]['infer_of_bound'])
    assert read[0]['flop_bound'] == '' and 'infer_round_s' not in read[0]
    targets = [dataclasses.asdict(t) for t in evaluate_targets(CPU_TARGET_META, rows)]
    write_results_json(tmp_path / 'r.json', CPU_TARGET_META, rows, targets)
    data = json.loads((tmp_path / 'r.json').read_text())
    assert data['rows'][0]['infer_round_s'] == [0.8, 0.9] and data['meta'] == CPU_TARGET_META
    assert len(data['targets']) == len(targets)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith('.')] == []  # no temporaries left


def test_default_output_name_says_device_setting_and_date():
    expected = 'results/benchmark_some-cpu-2-threads_fp32_b8_compile-both_20260102'
    assert str(default_output_prefix(CPU_TARGET_META)) == expected


@pytest.mark.parametrize('suffix, magic', [('.png', b'\x89PNG'), ('.svg', b'<?xml')])
def test_plot_is_written(tmp_path, suffix, magic):
    path = tmp_path / f'plot{suffix}'
    plot_throughput_vs_gmacs(path, sample_rows(), CPU_TARGET_META)
    assert path.read_bytes().startswith(magic)
    assert path.stat().st_size > 1000


def test_plot_needs_throughput(tmp_path):
    with pytest.raises(ValueError, match='no measured throughput'):
        plot_throughput_vs_gmacs(tmp_path / 'p.png', [row('m', 1.0, None, None)], CPU_TARGET_META)


def test_speedup_pairs_the_rounds_so_a_slow_stretch_cancels_out():
    from tl_models.benchmark.report import paired_speedup

    twin = {'infer_ips': 1.0, 'infer_round_s': [1.0, 3.0, 1.0, 1.0, 3.0]}  # rounds 2 and 5 ran on a busy machine
    variant = {'infer_ips': 1.0, 'infer_round_s': [0.5, 1.5, 0.5, 0.5, 1.5]}
    assert paired_speedup(variant, twin, 'infer') == pytest.approx(2.0)
    unpaired = {'infer_ips': 3.0, 'infer_round_s': [0.5]}
    assert paired_speedup(unpaired, twin, 'infer') == pytest.approx(3.0)  # rounds do not pair: throughputs
