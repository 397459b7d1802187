/**
 * anywidget entry of cnnviz_widgets. Bundled by esbuild into
 * cnnviz_widgets/static/widget.js (one self-contained ES module).
 */

import type { RenderProps } from "@anywidget/types";
import type { GenericTraits } from "./traits";
import { renderGenericView } from "./widget_view";

export default {
  render({ model, el }: RenderProps<GenericTraits>): () => void {
    return renderGenericView(model, el);
  },
};
