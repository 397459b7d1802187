# %% [markdown]
# # 类激活图：CAM、Grad-CAM 及其变体
#
# 类激活图回答的问题是：“图像的哪一部分让网络判断这是 *star*（星形）？”它由某个卷积层计算得到：该层的每个通道都是一张图，标出了对应特征在哪里被找到；再由某种方法决定每个通道对这个类别有多重要。本 Notebook 先手动实现 CAM 和 Grad-CAM，然后比较十三种方法，沿网络逐层查看，衡量这些图的忠实度，并验证 `cnnviz_widgets.cam` 给出的数值与 pytorch-grad-cam 一致。
#
# 所有内容都在包内自带的演示网络上运行。这个网络是训练好的，因此无需下载，得到的类激活图也有实际意义。

# %% [markdown]
# ## CAM（Zhou 等，2016）
#
# 演示网络的结尾与 CAM 最初所针对的那类网络相同：最后一个卷积块输出 128 张 8 × 8 的图 $A_c$，全局平均池化把每张图变成一个数，再由一个线性层给出各类别的得分：
#
# $$ y_k = b_k + \sum_c w_{k,c} \, \frac{1}{64} \sum_{i,j} A_c[i,j]
#       = b_k + \frac{1}{64} \sum_{i,j} \Big( \sum_c w_{k,c} A_c[i,j] \Big). $$
#
# 括号中的项就是**类激活图** $M_k = \sum_c w_{k,c} A_c$：类别 $k$ 的得分就是 $M_k$ 在各个位置上的平均值，因此 $M_k$ 显示了得分来自图像的哪里。这里的激活值是 `features.12`（最后一个 ReLU）的输出。

# %% [markdown]
# ## Grad-CAM（Selvaraju 等，2017）
#
# CAM 要求网络以“先池化、再接线性层”的结构结尾。Grad-CAM 则适用于任意网络的任意层：它求出类别得分的梯度 $G_c = \partial y_k / \partial A_c$，在各个位置上取平均，得到每个通道的权重，最后只保留正值部分：
#
# $$ \alpha_c = \frac{1}{hw} \sum_{i,j} G_c[i,j], \qquad
#    M = \mathrm{ReLU}\Big(\sum_c \alpha_c A_c\Big). $$
#
# 手动实现时，用一个前向钩子保存激活值，再用 `torch.autograd.grad` 求出它们的梯度：

# %% [markdown]
# 在这个网络上，Grad-CAM *就是* CAM：$y_k$ 对 $A_c[i,j]$ 的梯度在每个位置上都等于 $w_{k,c}/64$，所以 $\alpha_c = w_{k,c}/64$，两张图只相差一个因子 64（以及 ReLU）。
#
# `cam(model, x, layer, method, target)` 与 pytorch-grad-cam 一样，返回处理完成的图：经过 ReLU，归一化到 [0, 1]，（用双线性插值）调整到输入图像的尺寸，形状为 `(N, H, W)`。

# %% [markdown]
# ## 各种变体
#
# 所有方法都共用同一套流程（获取该层的输出、必要时做反向传播、组合各通道、ReLU、归一化、调整尺寸），区别只在于如何组合各个通道。对每张图像，记 $y$ 为类别得分，$A_c$ 为该层的各个通道，$G_c$ 为它们的梯度：
#
# | 方法 | ReLU 之前的原始图 |
# | --- | --- |
# | GradCAM | $\sum_c \bar G_c A_c$，其中 $\bar G_c$ 是 $G_c$ 的空间均值 |
# | GradCAMPlusPlus | $\sum_c w_c A_c$，$w_c = \sum_{ij} \alpha_{c,ij}\,\mathrm{relu}(G_{c,ij})$，$\alpha = G^2 / (2G^2 + G^3 \sum_{ij} A_c)$ |
# | XGradCAM | $\sum_c w_c A_c$，$w_c = \sum_{ij} G_{c,ij} A_{c,ij} / \sum_{ij} A_{c,ij}$ |
# | HiResCAM | $\sum_c G_c \odot A_c$（不对梯度取平均） |
# | LayerCAM | $\sum_c \mathrm{relu}(G_c) \odot A_c$ |
# | GradCAMElementWise | $\sum_c \mathrm{relu}(G_c \odot A_c)$ |
# | EigenCAM | 激活值的第一主成分（不使用类别，也不使用梯度） |
# | EigenGradCAM | $G \odot A$ 的第一主成分 |
# | KPCA_CAM | 激活值的第一核主成分（不使用类别） |
# | FEM | $\sum_c w_c A_c$，$w_c$ = 满足 $A_c > \mathrm{mean} + 2\,\mathrm{std}$ 的位置所占的比例（不使用类别） |
# | ScoreCAM | $\sum_c w_c A_c$，$w_c = \mathrm{softmax}_c$ 作用于以 $A_c$ 为掩码的输入所得的得分（每个通道需要一次前向传播） |
# | AblationCAM | $\sum_c w_c A_c$，$w_c = (y - y_c)/y$，其中 $y_c$ 是把通道 $c$ 置为 0 后的得分 |
# | FullGrad | 输入梯度 × 输入，加上每一层的偏置梯度 × 偏置（忽略所选的层） |
#
# 仓库中的 `docs/methods.md` 给出了每个公式的完整形式，以及参考文献和注意事项。下面在星形图像上并排比较：

# %% [markdown]
# 在这个网络的最后一层，各方法得到的图几乎重合：这一层的通道已经代表完整的形状，而且在这种 CAM 结构的网络上，Grad-CAM 和 HiResCAM 严格等同于 CAM，其他梯度方法也近似如此。EigenCAM、KPCA_CAM 和 FEM 甚至根本不使用类别（无论你指定哪个类别，它们显示的都是该层激活值所突出的内容；在只有一个物体的图像上，那就是这个物体）。FullGrad 是个例外：它忽略所选的层，把*每一层*的“梯度 × 偏置”项与输入梯度加在一起，而在这个网络上，其中很大一部分落在了背景上。
#
# 到了中间层，各方法就分道扬镳了。`features.7` 是第三个卷积层之后的 ReLU，它是一个 16 × 16 的网格，其通道检测的是形状的局部（角、边、尖端），而每种方法对这些局部的加权各不相同：

# %% [markdown]
# 光靠肉眼看，无法判断这些图中哪一张是对的；后面的忠实度指标会对此进行衡量。
#
# ## 沿网络深度逐层查看
#
# `cam_per_layer` 只需一次前向传播和一次反向传播，就能为每一层各给出一张图。靠前的层网格精细，但对类别所知甚少；最后几层了解类别，但网格粗糙，只有 8 × 8。

# %% [markdown]
# CAM 视图用 CAM 层（*CAM layer*）滑块实现了同样的逐层查看，另外还有方法菜单、以按钮列出的得分最高的几个类别，以及忠实度（*Faithfulness*）按钮：它会针对屏幕上显示的图，计算下一节介绍的删除、插入和平均下降指标。

# %% [markdown]
# ## 类激活图忠实于模型吗？
#
# 一张图可能看起来很合理，却并不是模型真正依据的东西。下面是四项标准检验，每一项都借助模型本身来计算，在八个样例上进行（每个类别一个样例，每个样例都针对其真实类别进行解释）：
#
# * **删除 AUC**（越低越好）：按重要性从高到低依次删除像素，同时跟踪类别概率；忠实的图会让概率迅速下降。
# * **插入 AUC**（越高越好）：从一张模糊的图像出发，先把最重要的像素放回去；概率应当迅速上升。
# * **平均下降**（average drop，越低越好）：当模型只看到与图相乘后的图像时，概率下降的百分比。
# * **指向游戏**（pointing game）：图的最大值是否落在物体的边界框内？（8 张中命中几张）
#
# 随机图是每种方法都必须超过的基线。这里只用 32 个删除步骤，让这个单元格运行得快一些；指标的数值会随步数略有变化。

# %% [markdown]
# 每种方法在全部四项指标上都胜过随机图，但这些指标并不能评出唯一的冠军：它们衡量的是不同的东西。删除指标奖励的是找到*一部分*决定性像素；平均下降奖励的是把这些像素*全部*保留下来，因此覆盖范围大的图得分高：FullGrad 的图覆盖了图像的大部分，平均下降最低，却只在一半的图像中指向了物体。在这八张图像上，各 Grad-CAM 变体之间的差异很小。
#
# ## 与 pytorch-grad-cam 数值一致
#
# 这些方法严格遵循 pytorch-grad-cam 1.5（课程所用的库）：公式相同，epsilon 相同，归一化和尺寸调整的方式也相同。下面的单元格在八个样例上分别运行两者，并打印每种方法的最大差值（图的取值在 [0, 1] 内）。pytorch-grad-cam 使用模型的一个独立副本，因为它会在传给它的模型上留下钩子和梯度。
#
# 有两个细节：其一，目标层是 `features.12`（最后一个 ReLU，即课程中的 `model.features[-1]`），因为在 CPU 上，如果某一层后面紧跟着原地操作的 ReLU，pytorch-grad-cam 保存的是该层的输出张量，而这个张量随后会被 ReLU 覆盖；其二，主成分的符号是任意的，因此比较 EigenCAM 和 EigenGradCAM 时，与参考实现的投影或其相反数进行比较，取决于参考实现取的是哪一个。

# %% [markdown]
# 这些差值来自 float32 的舍入误差（在取值 [0, 1] 的图上约为 1e-7 到 1e-6）。如果上面打印的参考实现符号不全是 `1`，那么参考实现为该图像画出的 EigenCAM 图对应的是主成分的*另一侧*；`cnnviz-widgets` 会调整主成分的方向，使它与激活值之和保持一致（见 `docs/methods.md`），因此它画出的图是稳定的。
#
# ## 使用 ImageNet 权重
#
# 课程用 VGG11 解释了一张照片。如果可以下载权重（例如在 Colab 上），下一个单元格会对包内自带的猫的照片做同样的事；离线时它会给出提示，这时请以上面在演示网络上得到的图为学习对象。

# %% [markdown]
# ## 练习
#
# 每个练习都有一个起始单元格（把其中的 `None` 换成你的代码）、一个检查单元格（用来检验你的答案；答案仍是 `None` 时，它只打印一条提示），以及一个隐藏的答案单元格（双击即可查看代码）。凡是写着*先预测*的地方，请在运行任何代码之前先写下你的猜测。

# %% [markdown]
# ### 练习 1：一张图像，所有类别
#
# 针对八个类别中的每一个，计算月牙形样例（`demo.samples[7]`，起始单元格中已加载为 `x7`）在 `features.12` 上的 Grad-CAM 图，以及每张*原始图*（`raw=True`：缩放到 [0, 1] 之前）的最大值。然后用 `show_cam` 画出这八张图。对于哪些类别，图落在形状上？落在形状的哪一部分？
#
# 先预测：哪个类别的原始图最强？对于哪些类别，图会偏离形状？

# %% [markdown]
# ### 练习 2：忽略类别的方法
#
# 分别用 EigenCAM 和 Grad-CAM，计算星形 `x` 在 `features.12` 上针对目标类别 0 和 3 的图，并对每种方法判断这两张图是否完全相同（`np.array_equal`）。为什么一个与类别无关的方法在忠实度表格中仍然可以得分不错？
#
# 先预测：两种方法中，哪一种对两个目标类别给出相同的图？

# %% [markdown]
# ### 练习 3：对每个类别，Grad-CAM 都等于 CAM
#
# 对全部八个样例（`xs`）和全部八个类别，根据 `features.12` 的激活值和分类器的权重 `w` 计算 CAM $\mathrm{relu}(\sum_c w_{k,c} A_c)$，再计算 Grad-CAM 在 `features.12` 上的原始图乘以 64。两者都是 8 × 8 的图；把它们堆叠成形状为 `(class, image, 8, 8)` 的数组。它们相等吗？

# %% [markdown]
# ### 练习 4：模型随机化合理性检验
#
# Adebayo 等人（2018，"Sanity checks for saliency maps"）提出了一个简单的问题：如果把网络的权重换成随机权重，解释会改变吗？它应当改变，因为随机网络什么也没有学到。一张保持不变的图反映的是图像，而不是模型。
#
# 在模型的一个副本上（`copy.deepcopy(model)`：绝不要随机化模型本身）手动完成这项检验，按从输出到输入的*级联*方式进行：依次重新初始化 `layers_from_the_output` 中的各层，每一层都先调用 `torch.manual_seed(1)`，再调用该层的 `reset_parameters()`，并让之前已处理的层保持随机。每处理完一层，就在副本上计算星形的导向反向传播图（见 Notebook 04；起始单元格中的 `guided_map`）和 `features.12` 上的 Grad-CAM 图（`gradcam_map`），以及它们与训练好的模型所给出的图之间的秩相关系数（`rank_correlation`：对绝对值计算的 Spearman 秩相关；1 表示重要性排序相同，0 表示毫无关系）。
#
# `cnnviz_widgets` 中的 `sanity_check(model, x, method)` 做的是同一件事（使用相同的随机种子，因此数值必须一致），此外还做随机类别检验；它的 `mean_scores("spearman")` 就是每一步的相关系数。
#
# 先预测：随着权重变得随机，两种图中哪一种会更接近原来的图？

# %% [markdown]
# ### 练习 5：课程中的 pytorch-grad-cam 示例
#
# 课程用短短几行 pytorch-grad-cam 代码来解释一张照片：打开一个 PNG 文件，缩放到 224 × 224，除以 255，转成张量，取 VGG11 的 `model.features[-1]` 作为目标层，再用 `ClassifierOutputTarget(preds)` 调用 `GradCAM`。下一个单元格在猫的照片上按这些步骤操作；这张照片被保存为带 alpha（透明度）通道的 PNG，很多 PNG 文件都是这样。如果上面能够加载 ImageNet 权重，VGG11 使用这些权重，否则使用随机权重（这时图没有意义，但下面的每个问题都一样）。

# %% [markdown]
# 这个示例有四处错误（第五处 `batch_size` 见练习 6）：
#
# 1. **图像有四个通道。** `Image.open` 会保留 PNG 的 alpha 通道（模式为 `RGBA`），因此张量的形状是 `(1, 4, 224, 224)`，而 VGG 的第一个卷积层是为三个通道设计的，会拒绝这个输入：这就是上面的报错。`.convert("RGB")` 可以去掉 alpha 通道。
# 2. **没有归一化。** torchvision 的 ImageNet 权重要求每个颜色通道都用 ImageNet 的均值和标准差做标准化（`IMAGENET_MEAN`、`IMAGENET_STD`）。取值在 [0, 1] 内的输入并不是网络训练时见到的数据，而且不会有任何警告：得到的预测和类激活图只不过是另一个输入的结果。把归一化后的张量交给模型；绘图时则保留 [0, 1] 范围的图像。
# 3. **`features[-1]` 不是最后一个卷积层。** 在 VGG11 中，它是最后一个 `MaxPool2d`。Grad-CAM 在这一层上能照常运行，但网格只有 7 × 7，分辨率是最后一个卷积层 14 × 14 的一半。应当选择最后一个卷积层之后的 ReLU，即 `features[-2]`，而不是卷积层 `features[-3]` 本身：原地操作的 ReLU 会覆盖它的输出（见上面关于 pytorch-grad-cam 的一节）。
# 4. **`preds` 从未定义。** 必须选定要解释的类别；通常选择预测的类别，即得分最大的那个索引。
#
# （课程中的 `vgg11(pretrained=True)` 是 torchvision 的旧写法，从 0.13 版起已被弃用；上面的 `load_pretrained` 使用的是 `weights=` 参数。）
#
# 先预测：这四个问题中，哪些会报错，哪些会在没有任何提示的情况下给出错误的图？
#
# 修正全部四处错误，并用 pytorch-grad-cam 计算预测类别的 Grad-CAM 图。（如果没有安装 pytorch-grad-cam，`cam(vgg11_net, input_tensor, layer, "GradCAM", target=pred)[0]` 会给出相同的图。）

# %% [markdown]
# ### 练习 6：ScoreCAM 的 `batch_size`
#
# 课程提醒说，ScoreCAM 和 AblationCAM 需要设置 `batch_size`。这两种方法都要为目标层的每个通道再运行一次网络：ScoreCAM 对被各通道的图遮罩后的输入打分，AblationCAM 则在关闭各个通道后运行网络。pytorch-grad-cam 每次把 `batch_size` 张这样的图像送入模型。AblationCAM 把它作为参数（`AblationCAM(model, target_layers, batch_size=32)`）；ScoreCAM 则在你给对象设置了 `batch_size` 属性时使用它（`score_cam.batch_size = 32`），否则使用 16。批量越大，前向传播的次数越少、每次越大：速度更快，直到内存耗尽为止。
#
# 先预测：在星形上、以 `features.12`（128 个通道）为目标层、设置 `batch_size = 32` 时，ScoreCAM 会调用演示模型多少次？每次调用有多少张图像？
#
# 然后数一数：在模型上挂一个前向钩子，每次调用时记录 `len(inputs[0])`；运行 ScoreCAM（在副本 `twin_for_scorecam` 上运行，因为 pytorch-grad-cam 会留下它的钩子和梯度），然后移除钩子。最后，不要运行，想一想：在 VGG11 的 `features[-2]`（512 个通道）上使用默认批量大小时，ScoreCAM 会调用多少次？

# %% [markdown]
# ## 你自己的网络
#
# 对于 ResNet，通常选用最后一个残差块的输出作为目标层（`cam(model, x, "layer4")`）；如果设置 `layer=None`，`cam` 会选择输出仍是空间网格的最后一层。
