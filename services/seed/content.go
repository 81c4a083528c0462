package seed

// handles are the stems of seeded usernames.
var handles = []string{"lin", "xiaomei", "chen", "tang", "yuki", "amelia", "wei", "noah", "zhou", "mia",
	"hao", "sofia", "jun", "leo", "qing", "ava", "ming", "ethan", "lan", "isla"}

type topic struct {
	tag    string
	titles []string
	bodies []string
}

// topics are what seeded notes are about, in the mix of Chinese and English a RedNote
// feed has, so search has both scripts to index.
var topics = []topic{
	{"travel", []string{"大理三天两夜攻略", "Kyoto in autumn: a slow itinerary", "成都美食地图", "Hidden beaches of Lisbon"},
		[]string{"避开人流的路线，早上七点出发最舒服。", "Took the early train and had the temple to ourselves. Bring cash for the small shops.",
			"住在古城外面，安静又便宜，推荐骑车。"}},
	{"food", []string{"十分钟早餐：番茄鸡蛋面", "The best dumplings in Shanghai", "空气炸锅烤鸡翅", "Sourdough for beginners"},
		[]string{"酱汁比例 2:1:1，一定要先炒香蒜末。", "Fold every 30 minutes for the first two hours, then leave it overnight.",
			"外酥里嫩，孩子一口气吃了六个。"}},
	{"ootd", []string{"秋冬通勤穿搭一周不重样", "Capsule wardrobe: 12 pieces", "小个子显高技巧", "Thrifted linen summer looks"},
		[]string{"基础款+一个亮色配饰，简单又有质感。", "Neutral palette, one statement coat, shoes that walk ten thousand steps.",
			"高腰线和同色系是关键。"}},
	{"skincare", []string{"敏感肌换季护肤清单", "Sunscreen texture test", "熬夜后急救面膜", "Minimal routine that works"},
		[]string{"精简步骤，修护为主，不要叠加太多活性成分。", "Three steps: cleanse, moisturise, SPF 50. Everything else is optional.",
			"连用一周，泛红明显改善。"}},
	{"fitness", []string{"居家十五分钟燃脂", "Couch to 5k in 8 weeks", "帕梅拉跟练打卡第30天", "Mobility for desk workers"},
		[]string{"每天坚持，体脂降了三个点。", "Week three is the hardest. Slow down, but do not stop.", "肩颈放松动作，一天做两次。"}},
	{"coffee", []string{"手冲入门：V60 参数", "Latte art: the tulip", "上海小众咖啡馆合集", "Cold brew at home"},
		[]string{"粉水比 1:15，水温 92 度，闷蒸 30 秒。", "Steam the milk to 60°C, tilt the cup, pour from high then low.",
			"角落里的座位最适合工作。"}},
	{"pets", []string{"橘猫的一天", "Adopting a senior dog", "猫咪绝育后护理", "Training a puppy to sit"},
		[]string{"它又把花盆推下去了。", "Slow walks, soft food, and a lot of naps. Best decision we made.", "术后一周不要让它跳高。"}},
	{"tech", []string{"程序员的桌面改造", "Go generics in practice", "机械键盘轴体对比", "Self-hosting on a Raspberry Pi"},
		[]string{"显示器挂臂解放了一半桌面。", "Type parameters shine in data structures; keep interfaces for behaviour.",
			"红轴安静，青轴有段落感，办公室慎用。"}},
}
