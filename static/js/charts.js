// Metric charts: draws the numbers webapp/runs/charts.py renders into `data-charts` with uPlot (vendored
// under static/vendor/uplot/, loaded on the first page that has charts). Axes with units and tick labels,
// the values under the cursor in the legend, a log scale per chart, W&B-style smoothing (a debiased
// exponential moving average drawn over the faint raw line) and one line per run when runs are compared.
//
// The run page's live partial is swapped every second; its chart panel is `hx-preserve`d, so the drawn
// charts, the cursor and the reader's settings survive, and only the fresh numbers are read from the new
// `data-charts` element and handed to each chart.
(function () {
  "use strict";

  const PALETTE = ["#2f5bd3", "#d9822b", "#1f8a4c", "#c0392b", "#7d3cbd", "#0f8b8d", "#8a6d1f", "#d63384"];
  const PLOT_HEIGHT = 220;
  let uplotLoading = null;

  // 4 significant digits; powers of ten when very small or large (webapp/runs/charts.py: format_value).
  function formatValue(value) {
    if (value === null || value === undefined || Number.isNaN(value)) return "—";
    if (value === 0) return "0";
    const magnitude = Math.abs(value);
    if (magnitude < 1e-3 || magnitude >= 1e5) {
      const [mantissa, exponent] = value.toExponential(3).split("e");
      return `${mantissa.replace(/\.?0+$/, "")}e${Number(exponent)}`;
    }
    return String(Number(value.toPrecision(4)));
  }

  // Debiased exponential moving average (TensorBoard's and W&B's smoothing): weight 0 leaves the values
  // as they are; the first smoothed value equals the first value. Missing values stay missing.
  function smooth(values, weight) {
    if (!weight) return values.slice();
    let average = 0;
    let count = 0;
    return values.map((value) => {
      if (value === null || value === undefined) return null;
      average = average * weight + (1 - weight) * value;
      count += 1;
      return average / (1 - Math.pow(weight, count));
    });
  }

  function withUplot(dataElement, callback) {
    if (window.uPlot) {
      callback();
      return;
    }
    if (!uplotLoading) {
      uplotLoading = new Promise((resolve, reject) => {
        const style = document.createElement("link");
        style.rel = "stylesheet";
        style.href = dataElement.dataset.uplotStyle;
        document.head.append(style);
        const script = document.createElement("script");
        script.src = dataElement.dataset.uplotScript;
        script.addEventListener("load", resolve);
        script.addEventListener("error", reject);
        document.head.append(script);
      });
    }
    uplotLoading.then(callback);
  }

  function smoothingOf(panel) {
    const slider = panel.querySelector("[data-chart-smoothing]");
    return slider ? Number(slider.value) : 0;
  }

  // Tick labels are drawn on the canvas; the figure also keeps them as text (for tests and screen readers).
  function tickLabels(figure, key) {
    return (plot, splits) => {
      const labels = splits.map((split) => (split === null || split === undefined ? null : formatValue(split)));
      figure.dataset[key] = labels.filter((label) => label !== null).join("|");
      return labels;
    };
  }

  function seriesAndData(figure, payload, weight) {
    const logScale = Boolean(figure.querySelector("[data-chart-log]")?.checked);
    const valueText = (plot, value) => formatValue(value);
    const series = [{ label: payload.x_label, value: valueText }];
    const data = [payload.x];
    payload.lines.forEach((line, index) => {
      const color = PALETTE[index % PALETTE.length];
      let values = logScale ? line.y.map((value) => (value !== null && value > 0 ? value : null)) : line.y;
      if (weight > 0) {
        series.push({
          label: `${line.label} (raw)`,
          stroke: `${color}55`,
          width: 1,
          spanGaps: true,
          points: { show: false },
          value: valueText,
        });
        data.push(values);
        values = smooth(values, weight);
      }
      series.push({ label: line.label, stroke: color, width: 1.8, spanGaps: true, value: valueText });
      data.push(values);
    });
    const shape = `${logScale}|${series.map((entry) => entry.label).join("|")}`;
    return { series, data, logScale, shape };
  }

  function plotWidth(figure) {
    return Math.max(240, figure.querySelector(".chart-plot").clientWidth);
  }

  // Steps, batches and rows are whole numbers: ticks 1, 2, 5, 10, 20, 50 ... apart, never at 2.5.
  const WHOLE_NUMBER_INCREMENTS = [];
  for (let power = 1; power <= 1e9; power *= 10) WHOLE_NUMBER_INCREMENTS.push(power, 2 * power, 5 * power);

  function draw(figure, payload, weight) {
    const { series, data, logScale, shape } = seriesAndData(figure, payload, weight);
    figure.dataset.logScale = String(logScale);
    figure.dataset.smoothing = String(weight);
    if (figure.plot && figure.plotShape === shape) {
      figure.plot.setData(data);
      return;
    }
    if (figure.plot) figure.plot.destroy();
    const options = {
      width: plotWidth(figure),
      height: PLOT_HEIGHT,
      scales: { x: { time: false }, y: logScale ? { distr: 3, log: 10 } : {} },
      axes: [
        { label: payload.x_label, incrs: WHOLE_NUMBER_INCREMENTS, values: tickLabels(figure, "xTicks") },
        { label: payload.unit ? `${payload.name} (${payload.unit})` : payload.name, size: 64, values: tickLabels(figure, "yTicks") },
      ],
      series,
      legend: { live: true },
      cursor: { drag: { x: true, y: false } },
    };
    figure.plot = new window.uPlot(options, data, figure.querySelector(".chart-plot"));
    figure.plotShape = shape;
  }

  // The caption beside the name, as _metric_charts.html first prints it: the latest value when the chart
  // has one line, and the range of all values.
  function summaryText(payload) {
    const values = payload.lines.flatMap((line) => line.y.filter((value) => value !== null));
    const range = `range ${formatValue(Math.min(...values))} – ${formatValue(Math.max(...values))}`;
    if (payload.lines.length > 1) return range;
    const line = payload.lines[0];
    let index = line.y.length - 1;
    while (index > 0 && line.y[index] === null) index -= 1;
    return `${formatValue(line.y[index])} at ${payload.x_label} ${formatValue(payload.x[index])} · ${range}`;
  }

  function figureFor(panel, payload) {
    const figures = panel.querySelectorAll("figure[data-metric]");
    for (const figure of figures) {
      if (figure.dataset.metric === payload.name) return figure;
    }
    // A metric that appeared after the page was drawn: the same markup as _metric_charts.html.
    const figure = document.createElement("figure");
    figure.className = "chart";
    figure.dataset.metric = payload.name;
    const caption = document.createElement("figcaption");
    const name = document.createElement("strong");
    name.textContent = payload.name;
    const summary = document.createElement("span");
    summary.className = "muted";
    summary.dataset.chartSummary = "";
    caption.append(name, " ");
    if (payload.unit) {
      const unit = document.createElement("span");
      unit.className = "muted";
      unit.textContent = `(${payload.unit})`;
      caption.append(unit, " ");
    }
    caption.append(summary);
    const label = document.createElement("label");
    label.className = "chart-log";
    const box = document.createElement("input");
    box.type = "checkbox";
    box.dataset.chartLog = "";
    box.checked = payload.log_scale;
    label.append(box, " log scale");
    caption.append(" ", label);
    const plot = document.createElement("div");
    plot.className = "chart-plot";
    figure.append(caption, plot);
    panel.querySelector(".charts").append(figure);
    return figure;
  }

  function refresh(dataElement) {
    const panel = document.getElementById(dataElement.dataset.chartsFor);
    if (!panel) return;
    const payloads = JSON.parse(dataElement.dataset.charts);
    panel.payloads = payloads;
    withUplot(dataElement, () => {
      const weight = smoothingOf(panel);
      for (const payload of payloads) {
        const figure = figureFor(panel, payload);
        figure.payload = payload;
        const summary = figure.querySelector("[data-chart-summary]");
        if (summary) summary.textContent = summaryText(payload);
        draw(figure, payload, weight);
      }
      panel.dataset.chartsReady = "true";
    });
  }

  function refreshAll() {
    document.querySelectorAll("[data-charts-for]").forEach(refresh);
  }

  document.addEventListener("input", (event) => {
    const slider = event.target;
    if (!(slider instanceof HTMLInputElement) || !slider.matches("[data-chart-smoothing]")) return;
    const panel = slider.closest("[data-chart-panel]");
    const output = panel.querySelector("[data-chart-smoothing-value]");
    if (output) output.textContent = Number(slider.value).toFixed(2);
    panel.querySelectorAll("figure[data-metric]").forEach((figure) => {
      if (figure.payload) draw(figure, figure.payload, smoothingOf(panel));
    });
  });

  document.addEventListener("change", (event) => {
    const box = event.target;
    if (!(box instanceof HTMLInputElement) || !box.matches("[data-chart-log]")) return;
    const figure = box.closest("figure[data-metric]");
    if (figure && figure.payload) draw(figure, figure.payload, smoothingOf(box.closest("[data-chart-panel]")));
  });

  window.addEventListener("resize", () => {
    document.querySelectorAll("figure[data-metric]").forEach((figure) => {
      if (figure.plot) figure.plot.setSize({ width: plotWidth(figure), height: PLOT_HEIGHT });
    });
  });

  document.addEventListener("htmx:afterSettle", refreshAll);
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", refreshAll);
  } else {
    refreshAll();
  }

  window.RefineryCharts = { formatValue, smooth };
})();
