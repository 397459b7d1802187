/**
 * The explorer's views: one table, in tab order. A new view is one entry
 * here and one module in this folder.
 */

import { createActmaxTab } from "./actmax";
import { createCamTab } from "./cam";
import { createDrawTab } from "./draw";
import { createExamplesTab } from "./examples";
import { createFeaturesTab } from "./features";
import { createKernelsTab } from "./kernels";
import type { MessageKey } from "../i18n";
import { createObjectsTab } from "./objects";
import { createSaliencyTab } from "./saliency";
import { createTrustTab } from "./trust";
import type { TabFactory } from "./tab";

export interface TabSpec {
  /** The name in the `views` and `tab` traits (and `.cnnviz-panel-<name>`). */
  name: string;
  /** The tab's title: a key of the message table. */
  title: MessageKey;
  create: TabFactory;
}

export const TABS: readonly TabSpec[] = [
  { name: "kernels", title: "tabs.kernels", create: createKernelsTab },
  { name: "features", title: "tabs.features", create: createFeaturesTab },
  { name: "cam", title: "tabs.cam", create: createCamTab },
  { name: "objects", title: "tabs.objects", create: createObjectsTab },
  { name: "saliency", title: "tabs.saliency", create: createSaliencyTab },
  { name: "actmax", title: "tabs.actmax", create: createActmaxTab },
  { name: "examples", title: "tabs.examples", create: createExamplesTab },
  { name: "trust", title: "tabs.trust", create: createTrustTab },
  { name: "draw", title: "tabs.draw", create: createDrawTab },
];

/** The tabs for a `views` trait (empty: all), in table order. */
export function tabsFor(views: readonly string[]): TabSpec[] {
  return TABS.filter((t) => views.length === 0 || views.includes(t.name));
}
