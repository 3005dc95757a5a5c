# Writes datasets/sample.jsonl (problems written for agentopt) after checking every answer with sympy.
# Run: .venv/bin/python scripts/make_sample.py
import json
from fractions import Fraction as F
from itertools import product
import sympy as sp
x = sp.symbols('x')
P = []
def add(subject, level, problem, answer, computed):
    P.append((subject, level, problem, answer, computed))

# Algebra
add("Algebra", 1, "What is the value of $3x + 7$ when $x = -4$?", "-5", 3*(-4)+7)
add("Algebra", 2, "Solve for $t$: $5t - 9 = 2t + 12$.", "7", sp.solve(sp.Eq(5*x-9, 2*x+12), x)[0])
add("Algebra", 3, "What is the sum of the roots of $2x^2 - 11x + 5 = 0$? Express your answer as a common fraction.", "\\frac{11}{2}", sum(sp.solve(2*x**2-11*x+5, x)))
add("Algebra", 3, "The line through the points $(2, 3)$ and $(6, 11)$ has slope $m$ and $y$-intercept $b$. What is $m + b$?", "1", (lambda m: m + (3 - m*2))(F(11-3, 6-2)))
add("Algebra", 4, "What is the positive difference between the two solutions of $x^2 + 6x - 40 = 0$?", "14", (lambda r: abs(r[0]-r[1]))(sp.solve(x**2+6*x-40, x)))
add("Algebra", 5, "For what positive value of $k$ does the equation $x^2 - kx + 49 = 0$ have exactly one real solution?", "14", [k for k in sp.solve(sp.Symbol('k')**2-4*49) if k > 0][0])
# Counting & Probability
add("Counting & Probability", 1, "In how many ways can 4 different books be arranged in a row on a shelf?", "24", sp.factorial(4))
add("Counting & Probability", 2, "Compute $\\dbinom{12}{4}$.", "495", sp.binomial(12, 4))
add("Counting & Probability", 3, "A committee of 3 people is chosen from a club of 9 members. In how many ways can this be done if two particular members, Ana and Ben, refuse to serve on the committee together?", "77", sp.binomial(9,3)-sp.binomial(7,1))
add("Counting & Probability", 3, "Two fair six-sided dice are rolled. What is the probability that the numbers shown add up to 9? Express your answer as a common fraction.", "\\frac{1}{9}", F(sum(1 for a,b in product(range(1,7),repeat=2) if a+b==9), 36))
add("Counting & Probability", 4, "How many distinct arrangements of the letters in the word BANANAS are there?", "420", len(set(__import__('itertools').permutations("BANANAS"))))
add("Counting & Probability", 5, "A fair coin is flipped 10 times. What is the probability of getting at least 8 heads? Express your answer as a common fraction.", "\\frac{7}{128}", F(sum(sp.binomial(10,k) for k in range(8,11)), 2**10))
# Geometry
add("Geometry", 1, "A rectangle is 12 cm long and 5 cm wide. How long is its diagonal, in centimeters?", "13", sp.sqrt(12**2+5**2))
add("Geometry", 2, "What is the distance between the points $(-3, 4)$ and $(5, -2)$?", "10", sp.sqrt((5+3)**2+(-2-4)**2))
add("Geometry", 2, "A circle has circumference $18\\pi$. What is its area? Express your answer in terms of $\\pi$.", "81\\pi", sp.pi*(18/sp.Integer(2))**2)
add("Geometry", 3, "A triangle has vertices at $(0, 0)$, $(8, 0)$ and $(3, 7)$. What is its area, in square units?", "28", abs(sp.Polygon((0,0),(8,0),(3,7)).area))
add("Geometry", 4, "The legs of a right triangle have lengths 20 and 21. What is the radius of the circle inscribed in the triangle?", "6", (20+21-sp.sqrt(20**2+21**2))/2)
add("Geometry", 5, "A regular hexagon has side length 4. What is its area? Express your answer in simplest radical form.", "24\\sqrt{3}", sp.Rational(3,2)*sp.sqrt(3)*16)
# Intermediate Algebra
add("Intermediate Algebra", 2, "What is the remainder when $x^3 - 4x^2 + 2x + 5$ is divided by $x - 3$?", "2", sp.rem(x**3-4*x**2+2*x+5, x-3))
add("Intermediate Algebra", 3, "Let $r$ and $s$ be the roots of $x^2 - 7x + 3 = 0$. Compute $r^2 + s^2$.", "43", sp.simplify(sum(r**2 for r in sp.solve(x**2-7*x+3, x))))
add("Intermediate Algebra", 3, "Find all real solutions of $x^4 - 13x^2 + 36 = 0$. Enter all the solutions, separated by commas.", "-3, -2, 2, 3", ", ".join(str(r) for r in sorted(sp.solve(x**4-13*x**2+36, x))))
add("Intermediate Algebra", 4, "Compute $\\displaystyle \\sum_{k=1}^{20} \\frac{1}{k(k+1)}$. Express your answer as a common fraction.", "\\frac{20}{21}", sum(F(1, k*(k+1)) for k in range(1, 21)))
add("Intermediate Algebra", 4, "What is the minimum value of $x^2 - 10x + 31$ over all real numbers $x$?", "6", sp.minimum(x**2-10*x+31, x))
add("Intermediate Algebra", 5, "Solve the inequality $x^2 - 5x - 14 < 0$. Express your answer in interval notation.", "(-2, 7)", sp.solve_univariate_inequality(x**2-5*x-14 < 0, x, relational=False))
# Number Theory
add("Number Theory", 1, "What is the greatest common divisor of 84 and 126?", "42", sp.gcd(84, 126))
add("Number Theory", 2, "What is the least common multiple of 18, 24 and 40?", "360", sp.ilcm(18, 24, 40))
add("Number Theory", 2, "What is the sum of the digits of $2^{20}$?", "31", sum(map(int, str(2**20))))
add("Number Theory", 3, "What is the remainder when $7^{100}$ is divided by 13?", str(pow(7, 100, 13)), pow(7, 100, 13))
add("Number Theory", 4, "How many positive divisors does 720 have?", "30", sp.divisor_count(720))
add("Number Theory", 5, "What is the largest prime factor of 9991?", "103", max(sp.primefactors(9991)))
# Prealgebra
add("Prealgebra", 1, "What is $\\frac{2}{3} + \\frac{1}{4}$? Express your answer as a common fraction.", "\\frac{11}{12}", F(2,3)+F(1,4))
add("Prealgebra", 1, "What is $15\\%$ of 240?", "36", F(15,100)*240)
add("Prealgebra", 2, "The average of five numbers is 18. Four of the numbers are 12, 20, 15 and 25. What is the fifth number?", "18", 5*18-(12+20+15+25))
add("Prealgebra", 3, "A jacket priced at $\\$40$ is discounted by $25\\%$, and the sale price is then reduced by another $10\\%$. What is the final price, in dollars?", "27", F(40)*F(3,4)*F(9,10))
add("Prealgebra", 4, "How many positive integers less than 200 are multiples of 3 or of 7?", "85", sum(1 for n in range(1,200) if n%3==0 or n%7==0))
# Precalculus
add("Precalculus", 1, "Compute $\\cos 60^\\circ$.", "\\frac{1}{2}", sp.cos(sp.pi/3))
add("Precalculus", 2, "Convert the point $(1, \\sqrt{3})$ in rectangular coordinates to polar coordinates. Enter your answer in the form $(r, \\theta)$, where $r > 0$ and $0 \\le \\theta < 2\\pi$.", "\\left( 2, \\frac{\\pi}{3} \\right)", (sp.sqrt(1+3), sp.atan2(sp.sqrt(3), 1)))
add("Precalculus", 3, "Compute the determinant of $\\begin{pmatrix} 3 & -2 \\\\ 5 & 4 \\end{pmatrix}$.", "22", sp.Matrix([[3,-2],[5,4]]).det())
add("Precalculus", 4, "Compute the dot product of $\\begin{pmatrix} 2 \\\\ -1 \\\\ 4 \\end{pmatrix}$ and $\\begin{pmatrix} 3 \\\\ 5 \\\\ -2 \\end{pmatrix}$.", "-7", sp.Matrix([2,-1,4]).dot(sp.Matrix([3,5,-2])))
add("Precalculus", 5, "Compute $(1 + i)^{12}$.", "-64", sp.expand((1+sp.I)**12))

def latex_value(ans):
    from math_verify import parse
    return parse("\\boxed{"+ans+"}")[0]
ok = True
slug = {"Algebra":"algebra","Counting & Probability":"counting","Geometry":"geometry","Intermediate Algebra":"intalg","Number Theory":"numtheory","Prealgebra":"prealgebra","Precalculus":"precalc"}
counts = {}
lines = []
for subject, level, problem, answer, computed in P:
    if isinstance(computed, str):
        good = computed == answer
    elif isinstance(computed, tuple):
        v = latex_value(answer); good = all(sp.simplify(a-b)==0 for a,b in zip(v, computed))
    elif isinstance(computed, sp.Interval):
        good = latex_value(answer) == computed
    else:
        v = latex_value(answer); good = sp.simplify(v - sp.nsimplify(computed)) == 0
    if not good:
        ok = False; print("MISMATCH", problem, answer, computed)
    counts[subject] = counts.get(subject, 0) + 1
    pid = f"sample/{slug[subject]}-{counts[subject]}"
    lines.append(json.dumps({"id": pid, "problem": problem, "answer": answer, "subject": subject, "level": level}))
assert ok
print(len(lines), sorted(set(l for _,l,*_ in P)), counts)
open(__import__("os").path.join(__import__("os").path.dirname(__file__), "..", "datasets", "sample.jsonl"), "w").write("\n".join(lines)+"\n")
