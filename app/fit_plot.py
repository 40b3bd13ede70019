"""The "memory vs context" chart of the Fit page: a matplotlib figure, rendered server-side (works offline)."""

from __future__ import annotations

from pipelines import fit_report

COLORS = {"E2B": "#1f77b4", "E4B": "#2ca02c", "26B-A4B": "#ff7f0e", "31B": "#d62728"}


def memory_plot(series: dict[str, list[tuple]], capacity_gb: float, hardware: str, quantization: str):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9, 4.2), dpi=100)
    axes = figure.subplots()
    for variant, points in series.items():
        tokens = [point[0] for point in points]
        gigabytes = [point[1] for point in points]
        axes.plot(tokens, gigabytes, marker="o", markersize=3, label=variant, color=COLORS.get(variant))
    axes.axhline(
        capacity_gb, color="black", linestyle="--", linewidth=1.2, label=f"{hardware}: {capacity_gb:.1f} GB"
    )
    axes.set_xscale("log", base=2)
    axes.set_xlabel("context length (tokens)")
    axes.set_ylabel("peak memory (GB)")
    axes.set_title(f"Peak memory vs context, {quantization}, per variant")
    ticks = [2**power for power in range(10, 19)]
    axes.set_xticks(ticks, [f"{tick // 1024}k" for tick in ticks])
    top = max([capacity_gb, *(point[1] for points in series.values() for point in points)])
    axes.set_ylim(0, top * 1.08)
    axes.grid(True, alpha=0.3)
    axes.legend(loc="upper left", fontsize=8)
    figure.tight_layout()
    return figure


def plot_for(target: fit_report.Hardware, quantization: str, batch: int, modalities):
    series = fit_report.plot_series(quantization, batch, modalities, device=target.device)
    return memory_plot(series, target.capacity_bytes / fit_report.GB, target.name, quantization)
