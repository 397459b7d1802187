/**
 * Styles of the widgets, injected once per document (or shadow root).
 * Every class starts with `cnnviz-`; colours come from JupyterLab's CSS
 * variables, with fallbacks for hosts that lack them, so light and dark
 * themes both work.
 */

export const STYLE_ELEMENT_ID = "cnnviz-widgets-style";

export const CSS = `
.cnnviz-root {
  box-sizing: border-box;
  max-width: 100%;
  padding: 8px;
  color: var(--jp-ui-font-color1, #222);
  background: var(--jp-layout-color1, #fff);
  font-family: var(--jp-ui-font-family, system-ui, -apple-system, "Segoe UI", sans-serif);
  font-size: var(--jp-ui-font-size1, 13px);
  line-height: 1.4;
}
.cnnviz-root *, .cnnviz-root *::before, .cnnviz-root *::after { box-sizing: border-box; }
.cnnviz-root [hidden] { display: none !important; }
.cnnviz-header { display: flex; flex-wrap: wrap; align-items: baseline; gap: 4px 12px; margin-bottom: 6px; }
.cnnviz-title { font-weight: 600; font-size: var(--jp-ui-font-size2, 15px); }
.cnnviz-title:empty { display: none; }
.cnnviz-meta { color: var(--jp-ui-font-color2, #555); font-size: var(--jp-ui-font-size0, 11px); }
.cnnviz-pager { display: flex; align-items: center; gap: 8px; margin-bottom: 6px; font-size: var(--jp-ui-font-size0, 11px); color: var(--jp-ui-font-color2, #555); }
.cnnviz-button {
  font: inherit;
  padding: 1px 8px;
  color: var(--jp-ui-font-color1, #222);
  background: var(--jp-layout-color2, #eee);
  border: 1px solid var(--jp-border-color1, #bbb);
  border-radius: 3px;
  cursor: pointer;
}
.cnnviz-button:disabled { opacity: 0.45; cursor: default; }
.cnnviz-button:not(:disabled):hover { background: var(--jp-layout-color3, #ddd); }
.cnnviz-stage { position: relative; overflow-x: auto; overflow-y: visible; max-width: 100%; }
/* A tall grid scrolls inside the widget (the input, its outline and the controls stay in view):
   at most 70 % of the window, and room left for the notebook's toolbar and the controls. */
.cnnviz-explorer .cnnviz-stage {
  max-height: max(240px, min(70vh, calc(100vh - 320px)));
  overflow-y: auto;
  overscroll-behavior: contain;
}
.cnnviz-stale .cnnviz-stage { opacity: 0.4; }
.cnnviz-explained { margin: 2px 0 4px; font-weight: 600; }
.cnnviz-explained-stale { font-weight: normal; font-style: italic; color: var(--jp-ui-font-color2, #555); }
.cnnviz-colorbar { display: inline-flex; flex-direction: column; width: 160px; margin-top: 6px; font-size: var(--jp-ui-font-size0, 11px); font-variant-numeric: tabular-nums; }
.cnnviz-colorbar-strip { display: block; width: 100%; height: 10px; border: 1px solid var(--jp-border-color1, #bbb); }
.cnnviz-colorbar-ticks { position: relative; display: flex; justify-content: space-between; height: 1.4em; }
.cnnviz-colorbar-zero { position: absolute; transform: translateX(-50%); }
.cnnviz-colorbar-note { max-width: 160px; min-height: 2.8em; }
.cnnviz-grid { display: block; cursor: crosshair; image-rendering: pixelated; touch-action: none; }
.cnnviz-highlight {
  position: absolute;
  pointer-events: none;
  outline: 2px solid var(--jp-brand-color1, #1976d2);
  outline-offset: 1px;
}
.cnnviz-zoom {
  position: fixed;
  z-index: 1000;
  left: 0;
  top: 0;
  pointer-events: none;
  padding: 4px;
  color: var(--jp-ui-font-color1, #222);
  background: var(--jp-layout-color1, #fff);
  border: 1px solid var(--jp-border-color1, #bbb);
  border-radius: 4px;
  box-shadow: 0 2px 8px rgba(0, 0, 0, 0.25);
  font-size: var(--jp-ui-font-size0, 11px);
  font-variant-numeric: tabular-nums;
  white-space: nowrap;
}
.cnnviz-zoom-canvas { display: block; image-rendering: pixelated; background: var(--jp-layout-color2, #eee); }
.cnnviz-zoom-caption { margin-top: 3px; }
.cnnviz-zoom-value { font-weight: 600; }
.cnnviz-message { padding: 8px 0; color: var(--jp-ui-font-color2, #666); font-style: italic; }
.cnnviz-tabs { display: flex; flex-wrap: wrap; gap: 2px; border-bottom: 1px solid var(--jp-border-color1, #bbb); margin-bottom: 6px; }
.cnnviz-tab {
  font: inherit; padding: 3px 10px; cursor: pointer;
  color: var(--jp-ui-font-color1, #222); background: transparent;
  border: 1px solid transparent; border-bottom: none; border-radius: 3px 3px 0 0;
}
.cnnviz-tab-active { background: var(--jp-layout-color2, #eee); border-color: var(--jp-border-color1, #bbb); font-weight: 600; }
.cnnviz-tab:focus-visible, .cnnviz-button:focus-visible, .cnnviz-slider:focus-visible, .cnnviz-select:focus-visible {
  outline: 2px solid var(--jp-brand-color1, #1976d2); outline-offset: 1px;
}
.cnnviz-controls { display: flex; flex-wrap: wrap; align-items: center; gap: 4px 12px; margin-bottom: 6px; }
.cnnviz-control { display: inline-flex; align-items: center; gap: 4px; }
.cnnviz-control-label { color: var(--jp-ui-font-color2, #555); }
.cnnviz-select, .cnnviz-number, .cnnviz-text {
  font: inherit; color: var(--jp-ui-font-color1, #222); background: var(--jp-layout-color1, #fff);
  border: 1px solid var(--jp-border-color1, #bbb); border-radius: 3px; padding: 1px 4px;
}
.cnnviz-number { width: 5em; }
.cnnviz-text { width: 8em; }
.cnnviz-slider { width: 180px; accent-color: var(--jp-brand-color1, #1976d2); }
.cnnviz-layer-name { font-family: var(--jp-code-font-family, monospace); font-weight: 600; }
.cnnviz-body { display: flex; gap: 12px; align-items: flex-start; }
.cnnviz-input { position: sticky; top: 0; flex: none; z-index: 1; }
.cnnviz-input-canvas { display: block; image-rendering: pixelated; }
.cnnviz-outline { position: absolute; pointer-events: none; outline: 2px solid #ff3d00; box-shadow: 0 0 0 1px #fff; }
.cnnviz-grid-box { flex: 1 1 auto; min-width: 0; }
.cnnviz-status { display: flex; align-items: center; gap: 8px; margin-bottom: 6px; font-size: var(--jp-ui-font-size0, 11px); }
.cnnviz-classes { display: flex; flex-wrap: wrap; gap: 4px; margin-bottom: 6px; }
.cnnviz-class { position: relative; overflow: hidden; display: inline-flex; gap: 6px; padding: 2px 8px; }
.cnnviz-class-active { border-color: var(--jp-brand-color1, #1976d2); font-weight: 600; }
.cnnviz-class-extra { border-style: dashed; }
.cnnviz-class-bar { position: absolute; left: 0; bottom: 0; height: 2px; background: var(--jp-brand-color1, #1976d2); }
.cnnviz-class-prob { font-variant-numeric: tabular-nums; color: var(--jp-ui-font-color2, #555); }
.cnnviz-detail { display: flex; align-items: flex-start; gap: 8px; margin-top: 8px; padding: 6px; border: 1px solid var(--jp-border-color1, #bbb); border-radius: 4px; }
.cnnviz-detail-canvas { image-rendering: pixelated; }
.cnnviz-arithmetic { margin-top: 8px; padding: 6px; border: 1px solid var(--jp-border-color1, #bbb); border-radius: 4px; }
.cnnviz-arithmetic-title { font-weight: 600; margin-bottom: 4px; }
.cnnviz-arithmetic-body { display: flex; flex-direction: column; gap: 6px; margin-bottom: 6px; }
.cnnviz-arithmetic-row { display: flex; flex-wrap: wrap; align-items: center; gap: 6px; }
.cnnviz-arithmetic-channel { min-width: 7em; }
.cnnviz-arithmetic-op { font-size: 16px; }
.cnnviz-arithmetic-sum, .cnnviz-arithmetic-total { font-variant-numeric: tabular-nums; }
.cnnviz-arithmetic-total { font-weight: 600; }
.cnnviz-arithmetic-ok { color: #1a7f37; }
.cnnviz-arithmetic-bad { color: #c62828; }
.cnnviz-arithmetic-grid { margin: 0; display: flex; flex-direction: column; align-items: center; }
.cnnviz-cells { display: grid; gap: 1px; }
.cnnviz-cell { min-width: 2.6em; min-height: 1.4em; padding: 0 2px; font-size: 10px; text-align: center; font-variant-numeric: tabular-nums; }
.cnnviz-examples-side { display: flex; flex-direction: column; gap: 2px; max-width: 132px; }
.cnnviz-examples-here, .cnnviz-examples-actmax { display: block; image-rendering: pixelated; }
.cnnviz-examples-channel { width: 5em; }
.cnnviz-trust-title, .cnnviz-trust-verdict { font-weight: 600; }
.cnnviz-trust-evaluation { margin-top: 12px; }
.cnnviz-trust-maps, .cnnviz-trust-thumbs { display: flex; flex-wrap: wrap; gap: 8px; align-items: flex-start; }
.cnnviz-trust-thumbs { margin: 4px 0; }
.cnnviz-trust-map, .cnnviz-trust-thumb { margin: 0; width: 104px; }
.cnnviz-trust-map-logit { width: 111px; padding-left: 6px; border-left: 1px dashed var(--jp-border-color1, #999); }
.cnnviz-trust-canvas { display: block; image-rendering: pixelated; }
.cnnviz-trust-caption-text { overflow-wrap: anywhere; }
.cnnviz-trust-bad { color: var(--jp-error-color1, #b00020); }
.cnnviz-trust-good { color: var(--jp-success-color1, #1b5e20); }
.cnnviz-trust-table { border-collapse: collapse; font-size: 12px; margin-top: 4px; }
.cnnviz-trust-cell { padding: 2px 8px; border-bottom: 1px solid var(--jp-border-color2, #ddd); text-align: left; white-space: nowrap; }
.cnnviz-trust-sort { font: inherit; font-weight: 600; color: inherit; border: none; background: none; padding: 0; cursor: pointer; }
.cnnviz-trust-row { cursor: pointer; }
.cnnviz-trust-row:hover { background: var(--jp-layout-color2, #f3f3f3); }
.cnnviz-trust-row-chosen, .cnnviz-trust-row-chosen:hover { background: rgba(33, 150, 243, 0.15); }
.cnnviz-trust-worst-list { margin: 2px 0; }
.cnnviz-trust-thumb-button { display: block; padding: 2px; background: none; border: 2px solid transparent; border-radius: 3px; cursor: pointer; }
.cnnviz-trust-thumb-button:hover { border-color: var(--jp-border-color1, #bbb); }
.cnnviz-trust-thumb-current .cnnviz-trust-thumb-button { border-color: var(--jp-brand-color1, #1976d2); }
.cnnviz-trust-sort:focus-visible, .cnnviz-trust-row:focus-visible, .cnnviz-trust-thumb-button:focus-visible {
  outline: 2px solid var(--jp-brand-color1, #1976d2); outline-offset: 1px;
}
.cnnviz-pad-side { display: flex; flex-direction: column; gap: 4px; min-width: 200px; }
.cnnviz-pad-hint { margin: 4px 0; }
.cnnviz-pad { display: block; cursor: crosshair; touch-action: none; image-rendering: pixelated; border: 1px solid var(--jp-border-color1, #bbb); }
.cnnviz-faith { margin: 4px 0; }
.cnnviz-silent-hint { padding: 6px 0; color: var(--jp-warn-color0, #b26a00); font-weight: 600; }
.cnnviz-message-action { margin-left: 6px; font-style: normal; }
.cnnviz-page-field { width: 4em; }
.cnnviz-layer-list { max-width: 16em; }
.cnnviz-opacity-value { min-width: 3em; font-variant-numeric: tabular-nums; }
.cnnviz-actmax-help { max-width: 60em; margin-bottom: 6px; }
.cnnviz-objects-overlay { position: absolute; pointer-events: none; }
.cnnviz-objects-threshold-value { min-width: 2.5em; font-variant-numeric: tabular-nums; }
.cnnviz-objects-list { max-height: 7.5em; overflow-y: auto; }
.cnnviz-swatch { align-self: center; width: 10px; height: 10px; border: 1px solid var(--jp-border-color1, #bbb); }
.cnnviz-swatch-none { background: repeating-linear-gradient(45deg, transparent 0 2px, var(--jp-border-color1, #bbb) 2px 3px); }
.cnnviz-error { color: var(--jp-error-color1, #d32f2f); font-style: normal; white-space: pre-wrap; }
`;

/**
 * Put the style sheet into the document or shadow root that holds `el`
 * (once). Safe to call before `el` is attached: then it goes to the
 * document, and again into a shadow root later if needed.
 */
export function ensureStyles(el: HTMLElement): void {
  const root = el.getRootNode();
  const doc = el.ownerDocument;
  const isShadow = typeof ShadowRoot !== "undefined" && root instanceof ShadowRoot;
  const host: ParentNode | null = isShadow ? root : doc.head;
  if (!host) return;
  const existing = isShadow
    ? root.querySelector(`#${STYLE_ELEMENT_ID}`)
    : doc.getElementById(STYLE_ELEMENT_ID);
  if (existing) return;
  const style = doc.createElement("style");
  style.id = STYLE_ELEMENT_ID;
  style.textContent = CSS;
  host.appendChild(style);
}
