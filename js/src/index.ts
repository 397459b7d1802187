/**
 * anywidget entry of cnnviz_widgets. Bundled by esbuild into
 * cnnviz_widgets/static/widget.js (one self-contained ES module).
 *
 * `render` draws the view named by the model's `_view` trait: the explorer
 * (and the focused views made of its tabs) or the generic map grid.
 * `renderStatic` draws a saved page (see `LayerExplorer.save_html`).
 */

import type { AnyModel, RenderProps } from "@anywidget/types";
import { renderExplorer } from "./explorer";
import { type SavedPage, StaticModel } from "./static_model";
import type { ExplorerTraits, GenericTraits } from "./traits";
import { renderGenericView } from "./widget_view";

function render({ model, el }: RenderProps<GenericTraits>): () => void {
  if (model.get("_view") === "explorer") {
    return renderExplorer(model as unknown as AnyModel<ExplorerTraits>, el);
  }
  return renderGenericView(model, el);
}

/** Draw a saved explorer page into `el`; returns the model (tests read `answered`). */
function renderStatic(el: HTMLElement, page: SavedPage): StaticModel {
  const model = new StaticModel(page);
  renderExplorer(model as unknown as AnyModel<ExplorerTraits>, el);
  return model;
}

export default { render, renderStatic };
