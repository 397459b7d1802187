/**
 * The explorer's views: one table, in tab order. A new view is one entry
 * here and one module in this folder.
 */

import { createActmaxTab } from "./actmax";
import { createCamTab } from "./cam";
import { createDrawTab } from "./draw";
import { createFeaturesTab } from "./features";
import { createKernelsTab } from "./kernels";
import { createSaliencyTab } from "./saliency";
import type { TabFactory } from "./tab";

export interface TabSpec {
  /** The name in the `views` and `tab` traits (and `.cnnviz-panel-<name>`). */
  name: string;
  title: string;
  create: TabFactory;
}

export const TABS: readonly TabSpec[] = [
  { name: "kernels", title: "Kernels", create: createKernelsTab },
  { name: "features", title: "Feature maps", create: createFeaturesTab },
  { name: "cam", title: "Class activation", create: createCamTab },
  { name: "saliency", title: "Saliency", create: createSaliencyTab },
  { name: "actmax", title: "Activation max.", create: createActmaxTab },
  { name: "draw", title: "Draw input", create: createDrawTab },
];

/** The tabs for a `views` trait (empty: all), in table order. */
export function tabsFor(views: readonly string[]): TabSpec[] {
  return TABS.filter((t) => views.length === 0 || views.includes(t.name));
}
