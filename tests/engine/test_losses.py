"""Losses: per-sample values and gradients as tf.js 4.22 computes them, gradients against
central finite differences, tf.js's quirks (|r| at 0, clipping, hinge labels), target checks."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tests.engine.gradcheck import assert_gradient_matches
from trainq.services.engine.arrays import to_numpy
from trainq.services.engine.errors import InvalidConfig, InvalidData
from trainq.services.engine.losses import LOSS_NAMES, get_loss

# Printed by @tensorflow/tfjs 4.22.0 (cpu backend, node): for each case (targets, outputs)
# and each loss (taken from a compiled model's lossFunctions; huberLoss is tf.losses.huberLoss,
# whose value is the batch mean), the loss and tf.grad(p => mean(loss(t, p)))(outputs).
# case: (targets, outputs, {loss: (tf.js's loss value(s), its gradient)})
TFJS_CASES: dict[str, tuple[list[list[float]], list[list[float]], dict[str, tuple[Any, list[list[float]]]]]] = {
    "reg": (
        [
            [0.5, -1.0, 2.0],
            [1.5, 0.0, -0.30000001192092896],
            [0.20000000298023224, 0.699999988079071, 9.999999717180685e-10],
            [3.0, 3.0, 3.0],
        ],
        [
            [0.4000000059604645, -1.0, 2.5],
            [1.0, 0.20000000298023224, -0.10000000149011612],
            [0.20999999344348907, 0.0, 0.5],
            [2.0, 4.5, 3.0],
        ],
        {
            "meanSquaredError": (
                [0.08666666597127914, 0.11000000685453415, 0.2466999888420105, 1.0833333730697632],
                [
                    [-0.01666666567325592, 0.0, 0.0833333358168602],
                    [-0.0833333358168602, 0.03333333507180214, 0.03333333879709244],
                    [0.0016666650772094727, -0.11666666716337204, 0.0833333358168602],
                    [-0.1666666716337204, 0.25, 0.0],
                ],
            ),
            "meanAbsoluteError": (
                [0.20000000298023224, 0.30000001192092896, 0.4033333361148834, 0.8333333730697632],
                [
                    [-0.0833333358168602, -0.0833333358168602, 0.0833333358168602],
                    [-0.0833333358168602, 0.0833333358168602, 0.0833333358168602],
                    [0.0833333358168602, -0.0833333358168602, 0.0833333358168602],
                    [-0.0833333358168602, 0.0833333358168602, -0.0833333358168602],
                ],
            ),
            "meanAbsolutePercentageError": (
                [15.000000953674316, 66666700.0, 166666704.0, 27.77777862548828],
                [
                    [-16.66666603088379, 8.333333015441895, 4.166666507720947],
                    [-5.55555534362793, 83333328.0, 27.777774810791016],
                    [41.666664123535156, -11.90476131439209, 83333328.0],
                    [-2.777777671813965, 2.777777671813965, 2.777777671813965],
                ],
            ),
            "meanSquaredLogarithmicError": (
                [0.009507475420832634, 0.02767805941402912, 0.1486789882183075, 0.06139123812317848],
                [
                    [-0.008213439024984837, 0.0, 0.007340505253523588],
                    [-0.018595298752188683, 0.025322426110506058, 0.0],
                    [0.001143085304647684, 0.0, 0.04505166411399841],
                    [-0.015982337296009064, 0.009650111198425293, 0.0],
                ],
            ),
            "squaredHinge": (
                [0.2133333534002304, 0.6469666957855225, 0.972588062286377, 0.0],
                [
                    [-0.06666667014360428, 0.0, 0.0],
                    [0.0, 0.0, 0.04850000515580177],
                    [-0.03193333372473717, -0.11666666716337204, -1.666666665789407e-10],
                    [0.0, 0.0, 0.0],
                ],
            ),
            "hinge": (
                [0.2666666805744171, 0.6566666960716248, 0.9860000610351562, 0.0],
                [
                    [-0.0416666679084301, 0.0, 0.0],
                    [0.0, 0.0, 0.02500000223517418],
                    [-0.01666666753590107, -0.05833333358168602, -8.333333328947035e-11],
                    [0.0, 0.0, 0.0],
                ],
            ),
            "categoricalHinge": (
                [0.0, 0.0, 1.4579999446868896, 0.0],
                [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [-0.05000000074505806, -0.17499999701976776, 0.25], [0.0, 0.0, 0.0]],
            ),
            "logcosh": (
                [0.04170205071568489, 0.053283512592315674, 0.11581156402826309, 0.42974036931991577],
                [
                    [-0.008305668830871582, 0.0, 0.03850976377725601],
                    [-0.03850976377725601, 0.016447938978672028, 0.016447946429252625],
                    [0.0008333027362823486, -0.05036398023366928, 0.03850976377725601],
                    [-0.06346618384122849, 0.0754290223121643, 0.0],
                ],
            ),
            "categoricalCrossentropy": (
                [-15.339022636413574, -4.692463397979736, 11.526297569274902, 10.374115943908691],
                [
                    [-0.24671052396297455, 0.06578947603702545, 0.06578947603702545],
                    [-0.034090906381607056, 0.34090909361839294, 0.34090909361839294],
                    [-0.16767270863056183, 0.07042254507541656, 0.07042254507541656],
                    [-0.1381578892469406, 0.07017545402050018, -0.013157889246940613],
                ],
            ),
            "binaryCrossentropy": (
                [-10.448973655700684, -4.194492816925049, 4.158840179443359, -31.884769439697266],
                [
                    [-0.0347222201526165, 0.0, 0.0],
                    [0.0, 0.1041666716337204, 0.0],
                    [0.005023101810365915, 0.0, 0.1666666716337204],
                    [0.0, 0.0, 0.0],
                ],
            ),
            "kullbackLeiblerDivergence": (
                [0.1115717738866806, 0.0, 11.023236274719238, 0.0],
                [
                    [-0.3124999701976776, 0.0, 0.0],
                    [-0.375, 0.0, 0.0],
                    [-0.2380952537059784, 0.0, -4.999999858590343e-10],
                    [0.0, 0.0, 0.0],
                ],
            ),
            "cosineProximity": (
                [-0.9940378665924072, -0.9760878086090088, -0.10638095438480377, -0.9511898756027222],
                [
                    [-0.006626268848776817, 0.006545130163431168, 0.003678262233734131],
                    [-0.006835341453552246, 0.04648037254810333, 0.024607252329587936],
                    [-0.10765384137630463, -0.44325393438339233, 0.045214615762233734],
                    [-0.01072770170867443, 0.007151806727051735, -0.0035758987069129944],
                ],
            ),
            "huberLoss": (
                0.18042083084583282,
                [
                    [-0.00833333283662796, 0.0, 0.0416666679084301],
                    [-0.0416666679084301, 0.01666666567325592, 0.016666673123836517],
                    [0.0008333325386047363, -0.05833333358168602, 0.0416666679084301],
                    [-0.0833333358168602, 0.0833333358168602, 0.0],
                ],
            ),
        },
    ),
    "prob": (
        [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.20000000298023224, 0.5, 0.30000001192092896]],
        [
            [0.20000000298023224, 0.699999988079071, 0.10000000149011612],
            [0.9999998807907104, 5.000000058430487e-08, 1.0000000116860974e-07],
            [0.30000001192092896, 0.30000001192092896, 0.4000000059604645],
            [0.10000000149011612, 0.10000000149011612, 0.800000011920929],
        ],
        {
            "meanSquaredError": (
                [0.046666670590639114, 8.903618165282626e-15, 0.18000000715255737, 0.14000000059604645],
                [
                    [0.03333333507180214, -0.05000000447034836, 0.01666666753590107],
                    [-1.9868215517249155e-08, 8.333334022836425e-09, 1.666666804567285e-08],
                    [0.05000000447034836, 0.05000000447034836, -0.10000000894069672],
                    [-0.01666666753590107, -0.06666667014360428, 0.0833333358168602],
                ],
            ),
            "meanAbsoluteError": (
                [0.20000000298023224, 8.973643161880318e-08, 0.4000000059604645, 0.3333333432674408],
                [
                    [0.0833333358168602, -0.0833333358168602, 0.0833333358168602],
                    [-0.0833333358168602, 0.0833333358168602, 0.0833333358168602],
                    [0.0833333358168602, 0.0833333358168602, -0.0833333358168602],
                    [-0.0833333358168602, -0.0833333358168602, 0.0833333358168602],
                ],
            ),
            "meanAbsolutePercentageError": (
                [100000016.0, 50.00000762939453, 200000032.0, 98.88888549804688],
                [
                    [83333328.0, -8.333333015441895, 83333328.0],
                    [-8.333333015441895, 83333328.0, 83333328.0],
                    [83333328.0, 83333328.0, -8.333333015441895],
                    [-41.666664123535156, -16.66666603088379, 27.777774810791016],
                ],
            ),
            "meanSquaredLogarithmicError": (
                [0.022912509739398956, 1.1842379282265398e-15, 0.08829563856124878, 0.06988891959190369],
                [
                    [0.025322426110506058, -0.01593322679400444, 0.014440921135246754],
                    [-4.9670543234014986e-09, 0.0, 0.0],
                    [0.0336364284157753, 0.0336364284157753, -0.04246130585670471],
                    [-0.01318354345858097, -0.04699316620826721, 0.03013170324265957],
                ],
            ),
            "squaredHinge": (
                [0.6966667175292969, 0.6666666865348816, 0.7866666913032532, 0.8134999871253967],
                [
                    [0.0, -0.05000000447034836, 0.0],
                    [-1.9868215517249155e-08, 0.0, 0.0],
                    [0.0, 0.0, -0.10000000894069672],
                    [-0.03266666829586029, -0.07916666567325592, -0.03800000250339508],
                ],
            ),
            "hinge": (
                [0.7666667103767395, 0.6666667461395264, 0.8666666746139526, 0.8966666460037231],
                [
                    [0.0, -0.0833333358168602, 0.0],
                    [-0.0833333358168602, 0.0, 0.0],
                    [0.0, 0.0, -0.0833333358168602],
                    [-0.01666666753590107, -0.0416666679084301, -0.02500000223517418],
                ],
            ),
            "categoricalHinge": (
                [0.5, 2.384185791015625e-07, 0.8999999761581421, 1.25],
                [
                    [0.25, -0.25, 0.0],
                    [-0.25, 0.0, 0.25],
                    [0.25, 0.25, -0.25],
                    [-0.05000000074505806, -0.125, 0.09999999403953552],
                ],
            ),
            "logcosh": (
                [0.02306685969233513, 0.0, 0.0862722396850586, 0.0676865354180336],
                [
                    [0.016447938978672028, -0.024276047945022583, 0.008305661380290985],
                    [-7.450580596923828e-09, 7.450580596923828e-09, 7.450580596923828e-09],
                    [0.02427605539560318, 0.02427605539560318, -0.04475412517786026],
                    [-0.008305668830871582, -0.031662411987781525, 0.03850976377725601],
                ],
            ),
            "categoricalCrossentropy": (
                [0.3566749691963196, 1.1920930376163597e-07, 0.9162907004356384, 1.6787526607513428],
                [
                    [0.25, -0.1071428656578064, 0.25],
                    [-2.9802322387695312e-08, 0.25, 0.25],
                    [0.25, 0.25, -0.375],
                    [-0.25, -1.0, 0.15625],
                ],
            ),
            "binaryCrossentropy": (
                [0.22839300334453583, 1.064031209807581e-07, 0.5432136058807373, 0.9807759523391724],
                [
                    [0.1041666716337204, -0.1190476045012474, 0.09259256720542908],
                    [-0.0625000074505806, 0.0, 0.08333335071802139],
                    [0.1190476268529892, 0.1190476268529892, -0.2083333432674408],
                    [-0.09259261935949326, -0.37037035822868347, 0.2604166865348816],
                ],
            ),
            "kullbackLeiblerDivergence": (
                [0.3566749691963196, 1.1920928244535389e-07, 0.9162907600402832, 0.649099588394165],
                [
                    [0.0, -0.3571428656578064, 0.0],
                    [-0.2500000298023224, 0.0, 0.0],
                    [0.0, 0.0, -0.6249999403953552],
                    [-0.5, -1.2499998807907104, -0.09375],
                ],
            ),
            "poisson": (
                [0.4522249102592468, 0.3333333432674408, 0.6387634873390198, 0.892917275428772],
                [
                    [0.0833333358168602, -0.03571426868438721, 0.0833333358168602],
                    [0.0, 0.0833333358168602, 0.0833333358168602],
                    [0.0833333358168602, 0.0833333358168602, -0.12499994784593582],
                    [-0.08333317190408707, -0.33333292603492737, 0.0520833358168602],
                ],
            ),
            "cosineProximity": (
                [-0.9525793790817261, -1.0, -0.6859943270683289, -0.6190103888511658],
                [
                    [0.08820179849863052, -0.03150063753128052, 0.04410089924931526],
                    [0.0, 1.2500002810611477e-08, 2.5000005621222954e-08],
                    [0.15132230520248413, 0.15132230520248413, -0.22698341310024261],
                    [-0.0763930231332779, -0.22615359723567963, 0.03781832754611969],
                ],
            ),
            "huberLoss": (
                0.04583333432674408,
                [
                    [0.01666666567325592, -0.02500000223517418, 0.00833333283662796],
                    [-7.450580596923828e-09, 7.450580596923828e-09, 7.450580596923828e-09],
                    [0.02500000223517418, 0.02500000223517418, -0.05000000447034836],
                    [-0.00833333283662796, -0.03333333507180214, 0.0416666679084301],
                ],
            ),
        },
    ),
    "bin": (
        [[1.0], [0.0], [1.0], [0.0], [1.0]],
        [[0.8999999761581421], [0.20000000298023224], [0.9999999403953552], [9.99999993922529e-09], [0.5]],
        {
            "meanSquaredError": (
                [0.010000004433095455, 0.04000000283122063, 3.552713678800501e-15, 1.0000000168623835e-16, 0.25],
                [
                    [-0.040000010281801224],
                    [0.08000000566244125],
                    [-2.3841858265427618e-08],
                    [3.999999886872274e-09],
                    [-0.20000000298023224],
                ],
            ),
            "meanAbsoluteError": (
                [0.10000002384185791, 0.20000000298023224, 5.960464477539063e-08, 9.99999993922529e-09, 0.5],
                [
                    [-0.20000000298023224],
                    [0.20000000298023224],
                    [-0.20000000298023224],
                    [0.20000000298023224],
                    [-0.20000000298023224],
                ],
            ),
            "meanAbsolutePercentageError": (
                [10.000001907348633, 200000000.0, 5.9604644775390625e-06, 10.0, 50.0],
                [[-20.0], [200000000.0], [-20.0], [200000000.0], [-20.0]],
            ),
            "meanSquaredLogarithmicError": (
                [0.0026310039684176445, 0.03324111923575401, 0.0, 0.0, 0.08276098221540451],
                [[-0.010798592120409012], [0.0607738234102726], [0.0], [0.0], [-0.07671522349119186]],
            ),
            "squaredHinge": (
                [0.010000004433095455, 1.0, 3.552713678800501e-15, 1.0, 0.25],
                [[-0.040000010281801224], [0.0], [-2.3841858265427618e-08], [0.0], [-0.20000000298023224]],
            ),
            "hinge": (
                [0.10000002384185791, 1.0, 5.960464477539063e-08, 1.0, 0.5],
                [[-0.20000000298023224], [0.0], [-0.20000000298023224], [0.0], [-0.20000000298023224]],
            ),
            "categoricalHinge": (
                [0.10000002384185791, 1.2000000476837158, 5.960464477539063e-08, 1.0, 0.5],
                [
                    [-0.20000000298023224],
                    [0.20000000298023224],
                    [-0.20000000298023224],
                    [0.20000000298023224],
                    [-0.20000000298023224],
                ],
            ),
            "logcosh": (
                [0.004991710186004639, 0.019868075847625732, 0.0, 0.0, 0.12011444568634033],
                [[-0.019933611154556274], [0.039475053548812866], [0.0], [0.0], [-0.0924234539270401]],
            ),
            "categoricalCrossentropy": (
                [1.1920930376163597e-07, 0.0, 1.1920930376163597e-07, 0.0, 1.1920930376163597e-07],
                [[0.0], [0.0], [0.0], [0.0], [0.0]],
            ),
            "binaryCrossentropy": (
                [
                    0.10536053776741028,
                    0.2231435477733612,
                    1.192093321833454e-07,
                    1.0000001537946446e-07,
                    0.6931471824645996,
                ],
                [[-0.22222213447093964], [0.2499999850988388], [0.0], [0.0], [-0.4000000059604645]],
            ),
            "kullbackLeiblerDivergence": (
                [0.10536056011915207, 0.0, 1.1920928244535389e-07, 0.0, 0.6931471824645996],
                [[-0.2222222238779068], [0.0], [-0.20000000298023224], [0.0], [-0.4000000059604645]],
            ),
            "poisson": (
                [1.0053603649139404, 0.20000000298023224, 0.9999999403953552, 9.99999993922529e-09, 1.1931469440460205],
                [[-0.022222205996513367], [0.20000000298023224], [0.0], [0.20000000298023224], [-0.19999991357326508]],
            ),
            "cosineProximity": ([-1.0, 0.0, -1.0, 0.0, -1.0], [[-1.4901161193847656e-08], [0.0], [0.0], [0.0], [0.0]]),
            "huberLoss": (
                0.030000001192092896,
                [
                    [-0.02000001072883606],
                    [0.040000006556510925],
                    [-1.4901161193847656e-08],
                    [0.0],
                    [-0.10000000149011612],
                ],
            ),
        },
    ),
    "hingecase": (
        [[1.0, -1.0, 1.0], [-1.0, 1.0, 1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]],
        [
            [0.30000001192092896, 0.20000000298023224, 2.0],
            [0.5, 1.0, 0.9900000095367432],
            [0.4000000059604645, 0.4000000059604645, 0.10000000149011612],
            [0.5, 0.5, 0.6000000238418579],
        ],
        {
            "meanSquaredError": (
                [0.9766666889190674, 0.7500333189964294, 0.17666667699813843, 0.2866666913032532],
                [
                    [-0.11666666716337204, 0.20000001788139343, 0.1666666716337204],
                    [0.25, 0.0, -0.0016666650772094727],
                    [0.06666667014360428, -0.10000000894069672, 0.01666666753590107],
                    [-0.0833333358168602, 0.0833333358168602, 0.10000000894069672],
                ],
            ),
            "meanAbsoluteError": (
                [0.9666666984558105, 0.503333330154419, 0.36666667461395264, 0.5333333611488342],
                [
                    [-0.0833333358168602, 0.0833333358168602, 0.0833333358168602],
                    [0.0833333358168602, -0.0833333358168602, -0.0833333358168602],
                    [0.0833333358168602, -0.0833333358168602, 0.0833333358168602],
                    [-0.0833333358168602, 0.0833333358168602, 0.0833333358168602],
                ],
            ),
            "meanAbsolutePercentageError": (
                [96.66667175292969, 50.33333206176758, 166666688.0, 366666688.0],
                [
                    [-8.333333015441895, 8.333333015441895, 8.333333015441895],
                    [8.333333015441895, 8.333333015441895, -8.333333015441895],
                    [83333328.0, -8.333333015441895, 83333328.0],
                    [-8.333333015441895, 83333328.0, 83333328.0],
                ],
            ),
            "meanSquaredLogarithmicError": (
                [0.12773901224136353, 0.05480898916721344, 0.08317150920629501, 0.15602204203605652],
                [
                    [-0.0552285872399807, 0.025322426110506058, 0.022525841370224953],
                    [0.04505166411399841, 0.0, -0.00041980837704613805],
                    [0.04005620256066322, -0.04246130585670471, 0.014440921135246754],
                    [-0.031964678317308426, 0.04505166411399841, 0.04895870015025139],
                ],
            ),
            "squaredHinge": (
                [0.6433333158493042, 0.7500333189964294, 0.7866666913032532, 0.75],
                [
                    [-0.11666666716337204, 0.20000001788139343, 0.0],
                    [0.25, 0.0, -0.0016666650772094727],
                    [0.0, -0.10000000894069672, 0.0],
                    [-0.0833333358168602, 0.0, 0.0],
                ],
            ),
            "hinge": (
                [0.6333333253860474, 0.503333330154419, 0.8666666746139526, 0.8333333730697632],
                [
                    [-0.0833333358168602, 0.0833333358168602, 0.0],
                    [0.0833333358168602, 0.0, -0.0833333358168602],
                    [0.0, -0.0833333358168602, 0.0],
                    [-0.0833333358168602, 0.0, 0.0],
                ],
            ),
            "categoricalHinge": (
                [0.0, 0.5099999904632568, 1.0, 1.100000023841858],
                [[0.0, 0.0, 0.0], [0.75, -0.25, -0.25], [0.25, -0.25, 0.0], [-0.25, 0.0, 0.25]],
            ),
            "logcosh": (
                [0.41824662685394287, 0.28516337275505066, 0.08436014503240585, 0.13678807020187378],
                [
                    [-0.05036398023366928, 0.06947122514247894, 0.06346618384122849],
                    [0.0754290223121643, 0.0, -0.0008333027362823486],
                    [0.03166241571307182, -0.04475412517786026, 0.008305661380290985],
                    [-0.03850976377725601, 0.03850976377725601, 0.04475413262844086],
                ],
            ),
            "categoricalCrossentropy": (
                [-0.18232159316539764, 0.22918587923049927, 0.8109301924705505, 1.1631507873535156],
                [
                    [-0.7333332896232605, 1.350000023841858, -0.02499999850988388],
                    [0.6004016399383545, -0.1495983898639679, -0.15212363004684448],
                    [0.277777761220932, -0.347222238779068, 0.277777761220932],
                    [-0.34375, 0.1562499850988388, 0.1562499850988388],
                ],
            ),
            "binaryCrossentropy": (
                [0.013607393018901348, 0.23439921438694, 0.5108256340026855, 0.7675284147262573],
                [
                    [-0.277777761220932, 0.625, 0.0],
                    [0.5, 0.0, -0.08417508006095886],
                    [0.1388888955116272, -0.2083333432674408, 0.09259256720542908],
                    [-0.1666666716337204, 0.1666666716337204, 0.2083333432674408],
                ],
            ),
            "kullbackLeiblerDivergence": (
                [15.712630271911621, 15.434998512268066, 0.9162907600402832, 0.6931471824645996],
                [
                    [-0.8333333134651184, 1.2499998807907104, 0.0],
                    [0.5, -0.25, -0.252525269985199],
                    [0.0, -0.6249999403953552, 0.0],
                    [-0.5, 0.0, 0.0],
                ],
            ),
            "poisson": (
                [0.46712934970855713, 0.6023010015487671, 0.6054301857948303, 0.7643823623657227],
                [
                    [-0.19444435834884644, 0.4999997913837433, 0.0416666679084301],
                    [0.2499999701976776, 7.450580596923828e-09, -0.0008417367935180664],
                    [0.0833333358168602, -0.12499994784593582, 0.0833333358168602],
                    [-0.08333329111337662, 0.0833333358168602, 0.0833333358168602],
                ],
            ),
            "cosineProximity": (
                [-0.5966005325317383, -0.5760543346405029, -0.6963106393814087, -0.5391638875007629],
                [
                    [-0.06018972769379616, 0.07824664562940598, 0.001203782856464386],
                    [0.12894201278686523, -0.03207622468471527, -0.03272199630737305],
                    [0.21100321412086487, -0.22419093549251556, 0.05275080353021622],
                    [-0.19121509790420532, 0.07836683839559555, 0.09404020756483078],
                ],
            ),
            "huberLoss": (
                0.261670857667923,
                [
                    [-0.05833333358168602, 0.0833333358168602, 0.0833333358168602],
                    [0.0833333358168602, 0.0, -0.0008333325386047363],
                    [0.03333333507180214, -0.05000000447034836, 0.00833333283662796],
                    [-0.0416666679084301, 0.0416666679084301, 0.05000000447034836],
                ],
            ),
        },
    ),
}

# tf.js's sparseCategoricalCrossentropy on class indices 1, 0, 2.7 (floored to 2), 5 and -1
# (out of range: all-zero one-hot): targets, outputs, loss, gradient, sparse accuracy.
SPARSE = (
    [[1.0], [0.0], [2.700000047683716], [5.0], [-1.0]],
    [
        [0.20000000298023224, 0.699999988079071, 0.10000000149011612],
        [0.9999998807907104, 5.000000058430487e-08, 1.0000000116860974e-07],
        [0.30000001192092896, 0.30000001192092896, 0.4000000059604645],
        [0.10000000149011612, 0.10000000149011612, 0.800000011920929],
        [0.5, 0.25, 0.25],
    ],
    [0.3566749691963196, 2.3841860752327193e-07, 0.9162907004356384, 0.0, 0.0],
    [
        [0.20000000298023224, -0.08571429550647736, 0.20000000298023224],
        [-4.470348358154297e-08, 0.0, 0.19999997317790985],
        [0.20000000298023224, 0.20000000298023224, -0.30000001192092896],
        [0.0, 0.0, 0.0],
        [0.0, 0.0, 0.0],
    ],
    [1.0, 1.0, 0.0, 0.0, 0.0],
)


def as32(values) -> np.ndarray:
    return np.asarray(values, dtype=np.float32)


def assert_within_ulps(got, expected, ulps: int = 2) -> None:
    """Each element within `ulps` of its own float32 spacing, or, where tf.js's sums
    cancel, of the spacing of the array's largest element."""
    expected = as32(expected)
    spacing = np.spacing(np.maximum(np.abs(expected), np.float32(1e-38))).astype(np.float64)
    scale = np.spacing(np.max(np.abs(expected))).astype(np.float64)
    error = np.abs(np.asarray(got, dtype=np.float64) - expected)
    assert np.all(error <= ulps * np.maximum(spacing, scale)), f"{got} != {expected}"


TFJS_LOSSES = sorted({name for _, _, values in TFJS_CASES.values() for name in values})


def test_every_tfjs_layers_loss_and_huber_is_available():
    assert set(TFJS_LOSSES) | {"sparseCategoricalCrossentropy"} <= set(LOSS_NAMES)
    assert len({get_loss(name).name for name in LOSS_NAMES}) == 15


@pytest.mark.parametrize("case, name", [(c, n) for c, (_, _, values) in TFJS_CASES.items() for n in values])
def test_values_and_gradients_match_tfjs_to_the_ulp(xp, case, name):
    t, p, values = TFJS_CASES[case]
    expected_loss, expected_grad = values[name]
    loss = get_loss(name)
    per_sample = to_numpy(loss.per_sample(xp, xp.asarray(as32(t)), xp.asarray(as32(p))))
    if name == "huberLoss":  # tf.losses.huberLoss answers the batch mean
        assert per_sample.shape == (len(t),)
        np.testing.assert_allclose(per_sample.mean(), expected_loss, rtol=3e-7)
    else:
        assert_within_ulps(per_sample, expected_loss)
    grad = loss.gradient(xp, xp.asarray(as32(t)), xp.asarray(as32(p)))
    assert grad.dtype == xp.float32
    assert_within_ulps(to_numpy(grad), expected_grad)


def test_sparse_categorical_crossentropy_matches_tfjs(xp):
    t, p, expected_loss, expected_grad, _ = SPARSE
    loss = get_loss("sparseCategoricalCrossentropy")
    assert_within_ulps(to_numpy(loss.per_sample(xp, xp.asarray(as32(t)), xp.asarray(as32(p)))), expected_loss)
    assert_within_ulps(to_numpy(loss.gradient(xp, xp.asarray(as32(t)), xp.asarray(as32(p)))), expected_grad)


RNG = np.random.default_rng(11)
REGRESSION_T = RNG.uniform(0.5, 2.0, size=(4, 3))
REGRESSION_P = REGRESSION_T + np.array([[-0.4, 0.3, 1.3], [0.6, -0.25, -0.1], [1.6, 0.2, -0.35], [0.15, 0.45, -0.3]])
PROBABILITY_P = RNG.uniform(0.05, 0.95, size=(4, 3))
SOFT_T = RNG.dirichlet(np.ones(3), size=4)
ONE_HOT_T = np.eye(3)[[0, 2, 1, 2]]
BINARY_T = np.array([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0], [1.0, 1.0, 0.0], [0.3, 0.8, 0.5]])
SIGNED_T = np.array([[1.0, -1.0, 1.0], [-1.0, 1.0, 1.0], [1.0, 1.0, -1.0], [-1.0, -1.0, 1.0]])
SIGNED_P = np.array([[0.3, 0.2, 2.0], [0.5, 1.4, 0.6], [-0.7, 0.1, 0.45], [1.7, -0.4, -0.8]])
HINGE_P = np.array([[0.9, 0.1, 0.5], [0.2, 0.3, 0.8], [0.1, 0.7, 0.4], [0.6, 0.3, 0.2]])
SPARSE_T = np.array([[0.0], [2.0], [1.0], [2.0]])

DOMAINS = {
    "meanSquaredError": (REGRESSION_T, REGRESSION_P),
    "meanAbsoluteError": (REGRESSION_T, REGRESSION_P),
    "meanAbsolutePercentageError": (REGRESSION_T, REGRESSION_P),
    "meanSquaredLogarithmicError": (REGRESSION_T, REGRESSION_P),
    "huberLoss": (REGRESSION_T, REGRESSION_P),
    "logcosh": (REGRESSION_T, REGRESSION_P),
    "poisson": (REGRESSION_T, REGRESSION_P),
    "cosineProximity": (SIGNED_T * REGRESSION_T, SIGNED_P),
    "binaryCrossentropy": (BINARY_T, PROBABILITY_P),
    "categoricalCrossentropy": (SOFT_T, PROBABILITY_P),
    "sparseCategoricalCrossentropy": (SPARSE_T, PROBABILITY_P),
    "kullbackLeiblerDivergence": (SOFT_T, PROBABILITY_P),
    "hinge": (SIGNED_T, SIGNED_P),
    "squaredHinge": (SIGNED_T, SIGNED_P),
    "categoricalHinge": (ONE_HOT_T, HINGE_P),
}


@pytest.mark.parametrize("name", sorted(DOMAINS))
def test_gradient_is_the_derivative_of_the_batch_mean_loss(xp, name):
    t, p = DOMAINS[name]
    loss = get_loss(name)
    t_xp = xp.asarray(t)

    def batch_mean(p_):
        return xp.mean(loss.per_sample(xp, t_xp, p_))

    assert_gradient_matches(xp, batch_mean, loss.gradient(xp, t_xp, xp.asarray(p)), p)


def loss_and_gradient(xp, name: str, t, p) -> tuple[np.ndarray, np.ndarray]:
    loss = get_loss(name)
    t_xp, p_xp = xp.asarray(as32(t)), xp.asarray(as32(p))
    return to_numpy(loss.per_sample(xp, t_xp, p_xp)), to_numpy(loss.gradient(xp, t_xp, p_xp))


def test_absolute_error_at_zero_residual_still_has_gradient_minus_one(xp):
    # tf.js's abs gradient is step(r, -1); tf.grad gave [[-0.5, -0.5]] for t = p = [[1, 2]].
    value, grad = loss_and_gradient(xp, "meanAbsoluteError", [[1.0, 2.0]], [[1.0, 2.0]])
    np.testing.assert_array_equal(value, [0.0])
    np.testing.assert_array_equal(grad, [[-0.5, -0.5]])


def test_mean_squared_error_gradient_is_bit_exact_with_the_float32_seed(xp):
    _, grad = loss_and_gradient(xp, "mse", [[0.0], [0.0], [0.0]], [[1.0], [2.0], [3.0]])
    seed = np.float32(1.0) / np.float32(3.0)
    np.testing.assert_array_equal(grad, (np.float32(2.0) * seed) * as32([[1.0], [2.0], [3.0]]))


def test_binary_crossentropy_stops_the_gradient_outside_the_clip_range(xp):
    value, grad = loss_and_gradient(xp, "binaryCrossentropy", [[1.0, 0.0, 1.0]], [[1e-9, 0.5, 1.0]])
    assert grad[0, 0] == 0.0 and grad[0, 2] == 0.0 and grad[0, 1] != 0.0
    # -log(1e-7) for the clipped first output, log 2 for the second, ~1e-7 for the third
    np.testing.assert_allclose(value, [(16.118095 + 0.6931472 + 1.1920929e-07) / 3], rtol=1e-6)


def test_categorical_crossentropy_divides_by_the_row_sum_first(xp):
    # Outputs that are not probabilities are normalised: [2, 6, 2] is read as [0.2, 0.6, 0.2].
    value, grad = loss_and_gradient(xp, "categoricalCrossentropy", [[0.0, 1.0, 0.0]], [[2.0, 6.0, 2.0]])
    np.testing.assert_allclose(value, [-np.log(0.6)], rtol=1e-6)
    np.testing.assert_allclose(grad, [[0.1, -1 / 15, 0.1]], rtol=1e-5)


def test_hinge_takes_zero_one_labels_as_given(xp):
    # Keras maps 0/1 labels to -1/1; tf.js does not, so a 0 label always costs 1.
    value, grad = loss_and_gradient(xp, "hinge", [[0.0, 1.0]], [[5.0, 2.0]])
    np.testing.assert_allclose(value, [0.5])
    np.testing.assert_array_equal(grad, [[0.0, 0.0]])


def test_categorical_hinge_sends_the_full_gradient_to_every_tied_maximum(xp):
    _, grad = loss_and_gradient(xp, "categoricalHinge", [[1.0, 0.0, 0.0]], [[0.5, 0.3, 0.3]])
    np.testing.assert_allclose(grad, [[-1.0, 1.0, 1.0]])


def test_sparse_labels_are_floored_and_out_of_range_labels_cost_nothing(xp):
    value, grad = loss_and_gradient(
        xp, "sparseCategoricalCrossentropy", [[1.9], [3.0], [-1.0]], [[0.2, 0.5, 0.3], [0.2, 0.5, 0.3], [0.2, 0.5, 0.3]]
    )
    np.testing.assert_allclose(value, [-np.log(0.5), 0.0, 0.0], rtol=1e-6)
    np.testing.assert_array_equal(grad[1:], np.zeros((2, 3)))


def test_losses_keep_their_target_shapes_in_one_dimension_per_sample(xp):
    for name in sorted(DOMAINS):
        t, p = DOMAINS[name]
        assert to_numpy(get_loss(name).per_sample(xp, xp.asarray(t), xp.asarray(p))).shape == (4,)


@pytest.mark.parametrize(
    "alias, canonical",
    [
        ("mse", "meanSquaredError"),
        ("MAE", "meanAbsoluteError"),
        ("mape", "meanAbsolutePercentageError"),
        ("msle", "meanSquaredLogarithmicError"),
        ("kld", "kullbackLeiblerDivergence"),
        ("cosine", "cosineProximity"),
        ("binary_crossentropy", "binaryCrossentropy"),
        ("sparse_categorical_crossentropy", "sparseCategoricalCrossentropy"),
        ("huber", "huberLoss"),
    ],
)
def test_aliases_resolve_to_the_tfjs_loss(alias, canonical):
    assert get_loss(alias).name == canonical


@pytest.mark.parametrize("name", ["meanSquaredErrors", "accuracy", "softmaxCrossEntropy", "", None])
def test_unknown_loss_names_the_field_and_lists_valid_names(name):
    with pytest.raises(InvalidConfig) as caught:
        get_loss(name, "compile.loss")
    assert caught.value.field == "compile.loss"
    assert "meanSquaredError" in caught.value.message


def test_targets_must_have_one_column_per_output_unit():
    get_loss("mse").check_target((10, 3), 3, "data.y")
    get_loss("mse").check_target((10,), 1, "data.y")  # tf.js makes a vector a column
    with pytest.raises(InvalidData) as caught:
        get_loss("mse").check_target((10, 2), 3, "data.y")
    assert caught.value.field == "data.y" and "3 unit" in caught.value.message
    with pytest.raises(InvalidData):
        get_loss("mse").check_target((10, 3, 1), 3, "validation.y")


def test_categorical_crossentropy_refuses_a_single_target_column():
    with pytest.raises(InvalidData) as caught:
        get_loss("categoricalCrossentropy").check_target((10, 1), 1, "data.y")
    assert "sparseCategoricalCrossentropy" in caught.value.message


def test_sparse_targets_are_one_index_per_sample_for_at_least_two_classes():
    loss = get_loss("sparseCategoricalCrossentropy")
    loss.check_target((10, 1), 4, "data.y")
    loss.check_target((10,), 4, "data.y")
    with pytest.raises(InvalidData) as caught:
        loss.check_target((10, 4), 4, "data.y")
    assert caught.value.field == "data.y"
    with pytest.raises(InvalidConfig) as refused:
        loss.check_target((10, 1), 1, "data.y")
    assert refused.value.field == "compile.loss"


@pytest.mark.parametrize("case, name", [(c, n) for c, (_, _, values) in TFJS_CASES.items() for n in values])
def test_value_and_gradient_at_once_equals_the_separate_calls(xp, case, name):
    # the fit loop uses the combined call, with the seed made once per batch shape;
    # MSE and MAE compute it their own faster way
    t, p, _ = TFJS_CASES[case]
    loss = get_loss(name)
    t_xp, p_xp = xp.asarray(as32(t)), xp.asarray(as32(p))
    for seed in (None, loss.batch_seed(xp, p_xp)):
        values, grad = loss.value_and_gradient(xp, t_xp, p_xp, seed)
        per_sample = loss.per_sample_of(xp, values)
        np.testing.assert_array_equal(to_numpy(per_sample), to_numpy(loss.per_sample(xp, t_xp, p_xp)))
        np.testing.assert_array_equal(to_numpy(grad), to_numpy(loss.gradient(xp, t_xp, p_xp)))


@pytest.mark.parametrize("case, name", [(c, n) for c, (_, _, values) in TFJS_CASES.items() for n in values])
def test_values_of_batches_joined_give_each_batchs_per_sample_losses(xp, case, name):
    # fit joins a run of batches' values and takes their per-sample losses in one call
    t, p, _ = TFJS_CASES[case]
    loss = get_loss(name)
    t_xp, p_xp = xp.asarray(as32(t)), xp.asarray(as32(p))
    halves = [slice(0, 2), slice(2, None)]
    joined = xp.concat([loss.value_and_gradient(xp, t_xp[h, ...], p_xp[h, ...])[0] for h in halves])
    np.testing.assert_array_equal(to_numpy(loss.per_sample_of(xp, joined)), to_numpy(loss.per_sample(xp, t_xp, p_xp)))
