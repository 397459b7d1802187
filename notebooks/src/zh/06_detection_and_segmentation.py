# %% [markdown]
# # 检测与分割：解释一个边界框和一个区域
#
# 分类器对每个类别给出一个得分，类激活图解释的是其中一个得分。检测器给出的是一组边界框，每个框带有一个类别和一个得分；分割模型给每个像素一个类别。要解释它们，类激活图需要一个出发点，也就是一个数：*这个框*的得分，或者*这个类别在这个区域上*的得分。本 Notebook 展示这两类模型返回什么，`cnnviz_widgets` 对每一类解释的是哪个数（与 pytorch-grad-cam 的 `FasterRCNNBoxScoreTarget` 和 `SemanticSegmentationTarget` 相同），以及如何只用一次前向传播的代价解释许多个框。
#
# 所有内容都离线运行在两个包内自带、在形状场景上训练好的模型上：一个 torchvision 的 FCOS 检测器和一个 torchvision 的 FCN 分割模型。类别 0 是背景，八种形状是类别 1 到 8。

# %% [markdown]
# ## 检测器返回什么
#
# 处于 eval 模式的 torchvision 检测器接收一批图像，返回一个列表，每张图像对应一个字典：`boxes` `(K, 4)`，格式为 `(x1, y1, x2, y2)`，单位是输入图像的像素；`labels` `(K,)`；`scores` `(K,)`，得分最高的排在最前。`detections(model, x, score_threshold=0.5)` 运行模型（在这些模型所需的 eval 模式下运行，之后把模型原样交还），保留得分高于阈值的框，以张量形式返回，可以直接变成目标：

# %% [markdown]
# ## 解释哪个数：一个框的得分
#
# 类激活图需要一个标量来求导。把所有得分加起来会把场景中的所有物体混在一起；而“输出中第 0 个框的得分”并不稳定：输入一变，框会移动，顺序也会改变。pytorch-grad-cam 的 `FasterRCNNBoxScoreTarget` 问的是另一个问题：*输出中是否仍然包含这个框，包含得有多好*。对类别为 $c$ 的框 $b$，取输出中与它重叠最多的框 $\hat b_j$，$j = \arg\max_i \mathrm{IoU}(b, \hat b_i)$，则
#
# $$ s(b, c) = \begin{cases} \mathrm{IoU}(b, \hat b_j) + \hat s_j &
#    \text{if } \mathrm{IoU}(b, \hat b_j) > 0.5 \text{ and } \hat c_j = c, \\
#    0 & \text{otherwise,} \end{cases} $$
#
# 其中 $\hat s_j$ 是该输出框的得分；包含多个框的目标把各框的 $s$ 相加。梯度经过两项传播：经过类别得分，也经过框的坐标（即 IoU）。`BoxTarget(label, box)` 就是这个目标（`found.target(i)` 为第 `i` 个检测结果构造它）。在框所来自的那张图像上，与它匹配最好的就是它自己，IoU 为 1：

# %% [markdown]
# 如果一个框目标匹配不到任何输出框（没有输出框与它的重叠超过 0.5，或者与它重叠最多的那个框属于另一个类别），它的得分就是 0，图也会是空的：pytorch-grad-cam 会一声不响地返回这张空图（这是它的 issue 中常见的问题）。`cam` 会先检查是否匹配，并说明输出在那里实际是什么：

# %% [markdown]
# 有一种情况常让 FCOS 和 RetinaNet 的用户困惑：它们在特征网格的每个位置预测一个框，并给每个类别一个得分，而它们的非极大值抑制只去掉*同一类别*中相互重叠的框。因此同一个框可能出现两次，带着两个不同的类别，而第二个副本的目标永远匹配不上：两个相同的框中，“重叠最多”的是第一个，即得分较高的那个。在构造目标之前，先对所有类别一起做非极大值抑制，为每个框保留得分最高的类别：`keep = torchvision.ops.nms(found.boxes, found.scores, 0.5)`。

# %% [markdown]
# `cam` 把 `BoxTarget` 作为 `target=` 接收，就像分类器的类别索引一样。`layer=None` 时，它选择检测器主干网络主体的最后一个阶段，这里是 `backbone.body.layer3`（8 × 8 的网格，步长 16）。特征金字塔由它算出，所以每个框的得分都依赖于它。对于以 ResNet-50 为主干的 torchvision Faster R-CNN 或 RetinaNet，它是 `backbone.body.layer4`。
#
# 类激活图是在整张图像上归一化到 [0, 1] 的。`normalize_in_boxes=True` 则改为在目标的各个框内部归一化到 [0, 1]，框外置为 0（pytorch-grad-cam 的检测教程手动做了这一步）：这样图只说明证据在*框内的哪个位置*。

# %% [markdown]
# 先看原始图：上面那一行说明它的最大值到底在不在框内。在框内归一化之后，图就无法显示这一点了；它只说明在框*之内*哪里最高。

# %% [markdown]
# ### 哪一层能解释一个框
#
# 每个框的得分都依赖于默认层，所以它对任何检测器都是稳妥的默认值；但它的 Grad-CAM 图是否针对*这一个*框，是另一个问题。FCOS 给一个框的得分是它的类别得分乘以中心度（centre-ness），而中心度对每个类别都一样，它经过框回归分支传到主干网络主体。Grad-CAM 把梯度在整个网格上平均成每个通道一个权重，于是对任何形状都有响应的通道也会把其他物体点亮：在留出的场景上，一个框在 `backbone.body.layer3` 上的图，其最大值只有 46% 落在框内。类别分支 `head.classification_head.conv`（`DETECTOR_CAM_LAYER`）只接收类别得分的梯度，而类别 logit 是其各通道的线性组合：在这一层，318 个框的图的最大值全部落在各自的框内。探索器打开这个检测器时使用的就是这一层。上面那个框在两层上的图：

# %% [markdown]
# 练习 1 在类别分支上对所有样例框的原始图提出这个问题。

# %% [markdown]
# ## 许多个框：一次前向传播
#
# 要解释一个场景中的每个框，可以对每个框调用一次 `cam`；每次调用都让模型做一次前向和一次反向传播。`cam_per_target(model, x, layer, method, targets)` 只做一次前向传播，保留计算图，再对每个目标做一次反向传播：K 张图，只需 1 次前向和 K 次反向传播。得到的图是一样的。挂在模型上的前向钩子统计模型被调用的次数：

# %% [markdown]
# 能省下多少，取决于模型的时间在前向和反向传播之间如何分配。在 CPU 上，对随机权重的 torchvision 检测器的一张图像中的 8 个框（`benchmarks/bench_detection.py`），对以 ResNet-50 为主干的 RetinaNet，`cam_per_target` 比调用 8 次 `cam` 快 2.3 倍；对以 MobileNetV3 为主干的 Faster R-CNN 快 1.3 倍，因为它的大部分时间花在反向传播上。
#
# ## 与 pytorch-grad-cam 数值一致
#
# `BoxTarget` 严格遵循 `FasterRCNNBoxScoreTarget`（阈值相同，求和方式相同，IoU 的算法与 `torchvision.ops.box_iou` 相同）。在六个样例场景上，每个场景用它的全部检测框计算一张图（`Detections.box_target()`，即教程中的用法），在 `backbone.body.layer3` 上计算 Grad-CAM：

# %% [markdown]
# ### 框要来自与图相同的那次前向传播
#
# 上面的比较把六个场景作为一批来解释，用的是在这一批中检测到的框。同一个场景单独检测，得到的框只在浮点数的最后几位上不同（卷积按另一种顺序累加），而框目标恰恰对此很敏感。下面对每个场景，分别用批量检测和单独检测得到的框，都在该场景上单独解释：

# %% [markdown]
# 只移动了百万分之几像素的框，可能得到不同的图，甚至完全不同的图。原因在于得分中的 IoU 项。恰好在检测到的框上，IoU 取最大值 1，它的梯度为 0（角点的 min 和 max 相等）：图解释的是类别得分。偏离百万分之一像素，IoU 对框的每条边的梯度约为 ±1/宽度；它经过检测器的框回归分支传播，强度与类别得分的梯度相当，于是图也把它解释了进去。pytorch-grad-cam 的目标也是如此。所以，要用框所来自的那次前向传播来解释它们：批量得到的框在这一批上解释（如上面的比较），单张图像的框在这张图像上解释（练习 1 和探索器都是这样做的）。

# %% [markdown]
# ## 分割：一个类别在一个区域上
#
# torchvision 的分割模型返回一个字典，其中 `"out"` 项保存每个类别在每个像素上的得分（logit），形状为 `(N, classes, H, W)`；一个像素的预测类别是得分最大的那个，`segmentation(model, x)` 给出这张 `(N, H, W)` 的图。pytorch-grad-cam 的 `SemanticSegmentationTarget` 用类别 $c$ 在掩码 $M$ 上的 logit 之和来解释它：
#
# $$ s(c, M) = \sum_{i,j} \mathrm{out}_c[i, j] \, M[i, j], $$
#
# `RegionTarget(c, mask)` 与之相同。通常的掩码就是模型预测为 $c$ 的那些像素：`RegionTarget(c, pred == c)`。

# %% [markdown]
# 分割模型的默认层是其主干网络的最后一层，这里是解码器的 `backbone.up0`，分辨率为输入的一半：它的图紧贴预测的区域。主体的最后一个阶段 `backbone.body.layer3` 以 8 × 8 的分辨率看到整个场景：这张粗糙的图显示该类别的证据是从哪里收集来的。
#
# ### 模型在那里并未预测的类别
#
# `RegionTarget` 接受任何类别，包括模型在掩码内任何地方都没有预测的类别。这时得分是一些较低的 logit 之和（这里是负数），它的图显示的是什么会*提高*该类别在那里的得分，即支持它的证据。这样的证据更少：原始图（`raw=True`，归一化到 [0, 1] 之前）比预测类别的图弱。但归一化到 [0, 1] 之后，它看起来一样亮；在解读一个并不存在的类别的图之前，先比较原始图的最大值：

# %% [markdown]
# ## 在检测器和分割模型上使用探索器
#
# `LayerExplorer(task="detection")` 在一个样例场景上打开包内自带的检测器。它的目标（*Objects*）标签页把框画在图像上，标出类别和得分（分数阈值（*Score threshold*）滑块隐藏得分低于阈值的框）；点击一个框，就显示该框的 `BoxTarget` 的图，还有一个开关：在框内归一化（*Normalise inside the box*，即 `normalize_in_boxes`）；方法和层的选择与类激活标签页相同。卷积核、特征图和显著性标签页的用法与分类器相同（显著性解释的是在目标标签页中选中的框）。

# %% [markdown]
# `LayerExplorer(task="segmentation")` 打开分割模型：预测的类别显示为半透明的掩码，并附有一个图例，列出各类别所占像素的比例；点击图例中的一个类别，或点击图像中的一个区域，就显示该类别在其区域上的 `RegionTarget` 的图。你自己的 torchvision 检测器或分割模型无需 `task=` 就能被识别：`LayerExplorer(model, image)`。

# %% [markdown]
# ## 使用 torchvision 的预训练模型
#
# 同样的调用也适用于 torchvision 的检测器和分割模型（Faster R-CNN、RetinaNet、FCOS、SSD、Mask R-CNN；FCN、DeepLabV3、LRASPP）。能下载 COCO 权重时（例如在 Colab 上），下一个单元格解释以 MobileNetV3 为主干的 Faster R-CNN 在包内自带的猫的照片中找到的框；离线时它会给出提示，这时请研究上面的演示检测器。torchvision 的检测器接受任意尺寸的 [0, 1] RGB 图像，并在内部缩放和归一化，因此权重的变换只负责转换图像格式。

# %% [markdown]
# ## 练习
#
# 每个练习都有一个起始单元格（把其中的 `None` 换成你的代码）、一个检查答案的检查单元格（答案仍为 `None` 时只打印一行提示），以及一个隐藏的答案（双击即可看到代码）。题目中写着*先预测*的地方，请在运行任何代码之前先写下你的猜测。

# %% [markdown]
# ### 练习 1：一个框的图指向框内吗？
#
# 对检测器在六个样例场景中找到的每个框（`scene_detections[i]` 是场景 `i` 的框，每个场景单独检测），在类别分支 `tower` 上计算它的 Grad-CAM 图（每个场景调用一次 `cam_per_target`），找出图中最大的像素 `(row, col)`（`np.unravel_index(m.argmax(), m.shape)`），并判断该像素的中心 `(col + 0.5, row + 0.5)` 是否位于框 `(x1, y1, x2, y2)` 之内。`peaks` 和 `hits` 都是列表，每个框一项，按场景排列，同一场景内按 `scene_detections[i]` 的顺序排列。
#
# 先预测：对多大比例的框，最大值落在框内？在默认层（`layer=None`）上呢？使用 `normalize_in_boxes=True` 会得到什么，它又能说明什么？

# %% [markdown]
# ### 练习 2：手动计算 `RegionTarget` 的得分
#
# `region` 解释类别 `shape` 在分割模型分配给它的那些像素上的得分。用 `logits`（分割模型对该场景的 `"out"`，形状为 `(1, 9, 128, 128)`）手动计算它的得分：该类别的 logit 在掩码上的和。然后在同一个掩码上对类别 `absent` 做同样的计算，模型在这个场景中的任何地方都没有预测这个类别。把两者与目标自己的值（`region(logits[0])`）进行比较。
#
# 先预测：这个不存在的类别的得分是正还是负？

# %% [markdown]
# ### 练习 3：手动计算 IoU
#
# `BoxTarget` 用交并比（IoU）来匹配框。用纯 Python 写出两个框 `(x1, y1, x2, y2)`（四个数的列表）的 `iou(a, b)`：交集的面积除以并集的面积。注意不重叠的框。然后，对第一个场景的每个真实框（`detector.sample_boxes[0]`），找出它与检测框（`found.boxes`）的最大 IoU：`best_ious`，每个真实框一个数。
#
# 先预测：它们高于 `BoxTarget` 的阈值 0.5 吗？
